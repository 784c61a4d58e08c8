package cwmp

import (
	"strconv"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// aliasNamer writes the path names the CPE returns with instance aliases
// instead of instance numbers when the ACS chose InstanceMode InstanceAlias
// (TR-069 3.6.1 Alias-Based Addressing): "Device.NAT.PortMapping.1.Enable"
// becomes "Device.NAT.PortMapping.[web].Enable". An instance whose Alias
// is empty keeps its number.
type aliasNamer struct {
	a     *Agent
	cache map[string]string // instance path -> its Alias
}

// namer is nil (names unchanged) unless InstanceAlias is in force.
func (a *Agent) namer() *aliasNamer {
	if a.param("ManagementServer.AliasBasedAddressing") != "true" || a.param("ManagementServer.InstanceMode") != "InstanceAlias" {
		return nil
	}
	return &aliasNamer{a: a, cache: map[string]string{}}
}

func (n *aliasNamer) name(path string) string {
	if n == nil {
		return path
	}
	out := make([]byte, 0, len(path)+16)
	start := 0
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		seg := path[start:i]
		if isNumber(seg) {
			inst := path[:i+1]
			alias, ok := n.cache[inst]
			if !ok {
				alias, _ = n.a.dm.Get(inst + "Alias")
				n.cache[inst] = alias
			}
			if alias != "" {
				seg = "[" + alias + "]"
			}
		}
		out = append(out, seg...)
		out = append(out, '.')
		start = i + 1
	}
	return string(append(out, path[start:]...))
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// autoCreate is the Auto-Create Instance Mechanism (TR-069 A.3.2.1, with
// AutoCreateInstances true): an "[alias]" instance a SetParameterValues
// names and that does not exist is created with that Alias first. It
// returns the instances made, for the caller to delete if the values
// fail.
func (a *Agent) autoCreate(changes []datamodel.Change) ([]string, error) {
	if a.param("ManagementServer.AliasBasedAddressing") != "true" || a.param("ManagementServer.AutoCreateInstances") != "true" {
		return nil, nil
	}
	var created []string
	undo := func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = a.dm.DeleteObject(created[i], datamodel.SetOptions{Origin: datamodel.OriginDevice})
		}
	}
	for _, c := range changes {
		for i := 0; i < len(c.Path); i++ {
			if c.Path[i] != '[' {
				continue
			}
			end := strings.Index(c.Path[i:], "].")
			if end < 0 {
				break
			}
			inst := c.Path[:i+end+2] // X.Table.[alias].
			if _, err := a.dm.GetNames(inst, true); err == nil {
				continue
			}
			table, alias, ok := datamodel.SplitAlias(inst)
			if !ok {
				break
			}
			n, err := a.dm.AddInstance(table, map[string]string{"Alias": alias}, datamodel.SetOptions{Origin: datamodel.OriginACS})
			if err != nil {
				undo()
				return nil, err
			}
			created = append(created, table+strconv.FormatUint(uint64(n), 10)+".")
		}
	}
	return created, nil
}
