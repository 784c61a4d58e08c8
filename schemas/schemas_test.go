package schemas

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/spectest"
)

// bbfParam is what the BBF data-model XML says of one parameter.
type bbfParam struct {
	access  string
	kind    string
	maxLen  int
	min     *int64
	max     *int64
	enum    []string
	hidden  bool
	forced  bool
	canDeny bool
}

type bbfModel struct {
	objects map[string]string // path -> access
	params  map[string]bbfParam
}

func loadBBF(t *testing.T, file, model string) *bbfModel {
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromFile(file))
	root := doc.Root()
	types := map[string]*etree.Element{}
	for _, dt := range root.SelectElements("dataType") {
		types[dt.SelectAttrValue("name", "")] = dt
	}
	var m *etree.Element
	for _, e := range root.SelectElements("model") {
		if e.SelectAttrValue("name", "") == model {
			m = e
		}
	}
	require.NotNil(t, m, "model %s not in %s", model, file)
	out := &bbfModel{objects: map[string]string{}, params: map[string]bbfParam{}}
	for _, o := range m.SelectElements("object") {
		if o.SelectAttrValue("status", "") == "deleted" {
			continue
		}
		op := o.SelectAttrValue("name", "")
		out.objects[op] = o.SelectAttrValue("access", "")
		for _, p := range o.SelectElements("parameter") {
			if p.SelectAttrValue("status", "") == "deleted" {
				continue
			}
			bp := bbfParam{
				access:  p.SelectAttrValue("access", ""),
				forced:  p.SelectAttrValue("forcedInform", "") == "true",
				canDeny: p.SelectAttrValue("activeNotify", "") == "canDeny",
			}
			syn := p.SelectElement("syntax")
			require.NotNil(t, syn, op+p.SelectAttrValue("name", ""))
			bp.hidden = syn.SelectAttrValue("hidden", "") == "true"
			readSyntax(syn, types, &bp)
			out.params[op+p.SelectAttrValue("name", "")] = bp
		}
	}
	return out
}

func readSyntax(syn *etree.Element, types map[string]*etree.Element, bp *bbfParam) {
	list := false
	for _, c := range syn.ChildElements() {
		switch c.Tag {
		case "default", "description":
			continue
		case "list":
			// A list is a string on the wire; its items' facets follow.
			bp.kind = "string"
			if sz := c.SelectElement("size"); sz != nil {
				bp.maxLen, _ = strconv.Atoi(sz.SelectAttrValue("maxLength", "0"))
			}
			list = true
		case "dataType":
			if dt := types[c.SelectAttrValue("ref", "")]; dt != nil && !list {
				readSyntax(dt, types, bp)
			}
			return
		default:
			if !list {
				bp.kind = c.Tag
			}
			for _, f := range c.ChildElements() {
				switch f.Tag {
				case "size":
					if !list {
						bp.maxLen, _ = strconv.Atoi(f.SelectAttrValue("maxLength", "0"))
					}
				case "range":
					if v := f.SelectAttrValue("minInclusive", ""); v != "" {
						n, _ := strconv.ParseInt(v, 10, 64)
						bp.min = &n
					}
					if v := f.SelectAttrValue("maxInclusive", ""); v != "" {
						n, _ := strconv.ParseInt(v, 10, 64)
						bp.max = &n
					}
				case "enumeration":
					if f.SelectAttrValue("status", "") != "deleted" {
						bp.enum = append(bp.enum, f.SelectAttrValue("value", ""))
					}
				}
			}
			return
		}
	}
}

func i64(p *int64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatInt(*p, 10)
}

func checkAgainstBBF(t *testing.T, s *datamodel.Schema, file string) {
	dir := spectest.BBFDir(t)
	bbf := loadBBF(t, filepath.Join(dir, file), s.Model)
	// The whole model is served: every BBF object and parameter is there.
	for path := range bbf.objects {
		assert.NotNil(t, s.Object(path), "%s lacks the object %s", s.Model, path)
	}
	for path := range bbf.params {
		assert.NotNil(t, s.Param(path), "%s lacks the parameter %s", s.Model, path)
	}
	for _, o := range s.Objects() {
		acc, ok := bbf.objects[o.Path]
		if !assert.True(t, ok, "object %s is not in %s", o.Path, s.Model) {
			continue
		}
		if o.Multi {
			assert.Equal(t, acc == "readWrite", o.Writable, "object %s: table writability differs from the BBF access %q", o.Path, acc)
		}
	}
	for _, p := range s.Params() {
		bp, ok := bbf.params[p.Path]
		if !assert.True(t, ok, "parameter %s is not in %s", p.Path, s.Model) {
			continue
		}
		assert.Equal(t, bp.access == "readWrite", p.Writable, "%s: access", p.Path)
		assert.Equal(t, bp.kind, p.Type.Wire().String(), "%s: type", p.Path)
		maxLen := p.Type.MaxLen
		if p.Type.List != nil {
			maxLen = p.Type.List.MaxLen
		}
		assert.Equal(t, bp.maxLen, maxLen, "%s: maximum length", p.Path)
		assert.Equal(t, i64(bp.min), i64(p.Type.Min), "%s: minimum", p.Path)
		assert.Equal(t, i64(bp.max), i64(p.Type.Max), "%s: maximum", p.Path)
		assert.Equal(t, bp.hidden, p.Hidden, "%s: hidden", p.Path)
		if bp.forced {
			assert.True(t, p.Forced, "%s: BBF forces it into every Inform", p.Path)
		}
		if bp.canDeny {
			assert.Equal(t, datamodel.NotifyCanDeny, p.Notify, "%s: BBF lets the CPE deny Active Notification", p.Path)
		}
		if len(p.Type.Enum) > 0 {
			a := append([]string(nil), p.Type.Enum...)
			b := append([]string(nil), bp.enum...)
			sort.Strings(a)
			sort.Strings(b)
			assert.Equal(t, b, a, "%s: enumeration", p.Path)
		}
	}
}

func TestDeviceAgainstBBF(t *testing.T) { checkAgainstBBF(t, Device(), "tr-106-1-1-0-full.xml") }

func TestIGDAgainstBBF(t *testing.T) { checkAgainstBBF(t, IGD(), "tr-098-1-1-0-full.xml") }

// TestTR111Parameters checks that each root carries every parameter TR-111
// defines for it (Tables 2 and 6, profiles DeviceAssociation:1, GatewayInfo:1
// and UDPConnReq:1).
func TestTR111Parameters(t *testing.T) {
	udp := []string{"UDPConnectionRequestAddress", "UDPConnectionRequestAddressNotificationLimit", "STUNEnable",
		"STUNServerAddress", "STUNServerPort", "STUNUsername", "STUNPassword", "STUNMaximumKeepAlivePeriod",
		"STUNMinimumKeepAlivePeriod", "NATDetected"}
	for _, root := range []string{RootDevice, RootIGD} {
		s, err := For(root)
		require.NoError(t, err)
		for _, n := range udp {
			assert.NotNil(t, s.Param(root+".ManagementServer."+n), "%s: %s", root, n)
		}
		lim := s.Param(root + ".ManagementServer.UDPConnectionRequestAddress")
		assert.Equal(t, root+".ManagementServer.UDPConnectionRequestAddressNotificationLimit", lim.Limit)
		assert.True(t, s.Param(root+".ManagementServer.STUNPassword").Hidden)
	}
	d := Device()
	for _, n := range []string{"ManufacturerOUI", "ProductClass", "SerialNumber"} {
		p := d.Param("Device.GatewayInfo." + n)
		require.NotNil(t, p, n)
		assert.Equal(t, 2, p.DefaultNotify, "TR-111 1.2.2: GatewayInfo.%s defaults to Active Notification", n)
	}
	g := IGD()
	md := g.Object("InternetGatewayDevice.ManagementServer.ManageableDevice.{i}.")
	require.NotNil(t, md)
	assert.False(t, md.Writable, "the ACS cannot add ManageableDevice entries")
	for _, n := range []string{"ManufacturerOUI", "SerialNumber", "ProductClass"} {
		p := g.Param(md.Path + n)
		require.NotNil(t, p, n)
		assert.Equal(t, datamodel.NotifyCanDeny, p.Notify, "TR-111 Table 3")
	}
	cnt := g.Param("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries")
	assert.Equal(t, md, cnt.CountOf)
	assert.Equal(t, "InternetGatewayDevice.ManagementServer.ManageableDeviceNotificationLimit", cnt.Limit)
	assert.True(t, strings.HasPrefix(d.Param("Device.DeviceSummary").Default, "Device:1.1[]("))
}

// TestGenerated regenerates the schemas from the BBF XML into a temporary
// directory: the committed files must be what gen.go writes.
func TestGenerated(t *testing.T) {
	bbfDir := spectest.BBFDir(t)
	out := t.TempDir()
	cmd := exec.Command("go", "run", "gen.go", "-spec", filepath.Dir(bbfDir), "-out", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	for _, name := range []string{"device-1.1.schema", "igd-1.2.schema", "device-2.19.schema", "types_gen.go"} {
		want, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		got, err := os.ReadFile(name)
		require.NoError(t, err)
		if !bytes.Equal(want, got) {
			t.Errorf("%s differs from what gen.go writes: run go generate ./schemas", name)
		}
		if strings.HasSuffix(name, ".schema") {
			// The embedded copy must hold the same text (its bytes may differ
			// between Go versions' compressors, so they are not compared).
			f, err := os.Open(name + ".gz")
			require.NoError(t, err)
			zr, err := gzip.NewReader(f)
			require.NoError(t, err)
			text, err := io.ReadAll(zr)
			f.Close()
			require.NoError(t, err)
			if !bytes.Equal(want, text) {
				t.Errorf("%s.gz does not hold %s: run go generate ./schemas", name, name)
			}
		}
	}
}

// TestForcedValuesOfEveryModel: the pruned walk of an Inform's
// ParameterList finds every forcedInform parameter of each model, tables
// included, with the values GetValues reads.
func TestForcedValuesOfEveryModel(t *testing.T) {
	for _, name := range Names() {
		s, err := Model(name)
		require.NoError(t, err)
		tree, err := datamodel.New(s, datamodel.Options{})
		require.NoError(t, err)
		got, err := tree.ForcedValues()
		require.NoError(t, err)
		want, err := tree.GetValues(tree.Forced())
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
		assert.NotEmpty(t, got, name)
	}
}
