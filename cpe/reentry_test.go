package cpe

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
)

// TestGettersDoNotReenterTheTree: computed values are read under the
// tree's read lock, and a read lock taken again by the same reader waits
// behind any writer that queued meanwhile (sync.RWMutex), which waits for
// the first: the device hung, once in 150 starts, when the TR-111 client
// wrote UDPConnectionRequestAddress while the first Inform read the LAN
// values, whose getter read ManagementServer.URL from the tree. Writers
// and Inform builds race here, with the interface cache expired each time.
func TestGettersDoNotReenterTheTree(t *testing.T) {
	c, err := Build(Config{Root: "Device", Host: &sysinfo.Host{}, Factory: map[string]string{
		"Device.ManagementServer.URL": "http://127.0.0.1:9/acs", "Device.DeviceInfo.ManufacturerOUI": "00D09E",
		"Device.DeviceInfo.SerialNumber": "RE1"}})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				c.Tree.SetValues([]datamodel.Change{{Path: "Device.ManagementServer.PeriodicInformInterval", Value: strconv.Itoa(60 + i%100)}},
					datamodel.SetOptions{Origin: datamodel.OriginDevice})
			}
		}()
		go func() {
			defer wg.Done()
			for range 3000 {
				c.net.mu.Lock()
				c.net.at = time.Time{} // read the interface again: the getter's slow path
				c.net.mu.Unlock()
				c.Tree.ForcedValues()
			}
		}()
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: a getter took the tree's lock again")
	}
}
