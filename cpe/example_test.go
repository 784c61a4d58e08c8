package cpe_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// Example embeds the agent in a Go program: one CPE, its tree in memory,
// talking to an ACS (here the in-repository test ACS on loopback).
func Example() {
	acs, err := cwmptest.New()
	if err != nil {
		panic(err)
	}
	defer acs.Close()

	c, err := cpe.Build(cpe.Config{
		Root: "Device",
		Factory: map[string]string{ // factory values, by parameter path
			"Device.ManagementServer.URL":                       acs.URL,
			"Device.DeviceInfo.ManufacturerOUI":                 "00D09E",
			"Device.DeviceInfo.ProductClass":                    "Box",
			"Device.DeviceInfo.SerialNumber":                    "EMBED1",
			"Device.ManagementServer.ConnectionRequestUsername": "acs",
			"Device.ManagementServer.ConnectionRequestPassword": "secret",
		},
		ConnReqListen: "127.0.0.1:0", // HTTP Connection Requests
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// The first session: BOOTSTRAP and BOOT.
	inf, err := acs.WaitInform(ctx, "00D09E-Box-EMBED1", 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(inf.Event[0].EventCode, inf.Event[1].EventCode)
	// The device writes its own values (a read-only one to the ACS here).
	c.Tree.Set("Device.DeviceInfo.SoftwareVersion", "2.0")
	fmt.Println(c.Tree.MustGet("Device.DeviceInfo.SoftwareVersion"))

	cancel()
	<-done
	// Output:
	// 0 BOOTSTRAP 1 BOOT
	// 2.0
}
