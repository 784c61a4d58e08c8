package fleet_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/fleet"
)

// Example starts 1,000 virtual CPEs against an ACS under test (here the
// in-repository test ACS) and waits until every one has bootstrapped: the
// few lines an ACS developer's Go test needs.
func Example() {
	acs, err := cwmptest.New()
	if err != nil {
		panic(err)
	}
	defer acs.Close()
	acs.Lean(true) // keep no transcript of 1,000 sessions

	f, err := fleet.New(fleet.Config{
		Count:  1000,
		Serial: "EX%04d",
		Base: cpe.Config{Root: "Device", Factory: map[string]string{
			"Device.ManagementServer.URL":       acs.URL,
			"Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.ProductClass":    "Sim",
		}},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for f.Up() < 1000 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println(f.Up(), "CPEs up;", len(acs.Devices()), "devices at the ACS")

	cancel()
	<-done
	// Output: 1000 CPEs up; 1000 devices at the ACS
}
