// Package assoc implements TR-111 Part 1, Device-Gateway Association over
// DHCP option 125, on both sides:
//
//   - the device side (TR-111 1.2.2): a DHCP client (full DORA with renewal
//     and rebinding, or DHCPINFORM only) that sends the Device Identity and
//     records the Gateway Identity in GatewayInfo;
//   - the gateway side (TR-111 1.2.1, 1.2.6): a DHCP server that answers a
//     Device Identity with the Gateway Identity, and the ManageableDevice
//     table, fed by that server or by dnsmasq's dhcp-script.
//
// The option codec itself is in package tr111 (option125.go). This package
// reaches the parameter tree only through the small interfaces below.
package assoc
