package assoc

import (
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// Store is what the device side needs of the parameter tree.
type Store interface {
	Get(path string) (string, error)
	SetValues(changes []datamodel.Change, opt datamodel.SetOptions) error
}

// GatewayInfoChanges are the writes that make Device.GatewayInfo hold id
// (TR-111 1.2.2): every field is written, an empty string for a sub-option
// the gateway left out; a nil id empties all three (lease released or
// expired, or no Gateway Identity at all).
func GatewayInfoChanges(root string, id *tr111.Identity) []datamodel.Change {
	var v tr111.Identity
	if id != nil {
		v = *id
	}
	p := root + ".GatewayInfo."
	return []datamodel.Change{
		{Path: p + "ManufacturerOUI", Value: v.ManufacturerOUI},
		{Path: p + "SerialNumber", Value: v.SerialNumber},
		{Path: p + "ProductClass", Value: v.ProductClass},
	}
}

// RecordGateway writes GatewayInfo as the device (not the ACS), so that
// the notify engine reports the change; values that already hold are not
// written again.
func RecordGateway(s Store, root string, id *tr111.Identity) error {
	var changes []datamodel.Change
	for _, c := range GatewayInfoChanges(root, id) {
		if cur, err := s.Get(c.Path); err != nil || cur != c.Value {
			changes = append(changes, c)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	return s.SetValues(changes, datamodel.SetOptions{Origin: datamodel.OriginDevice})
}
