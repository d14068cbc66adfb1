// Package radios holds what a serial radio speaks, as pure code (no I/O,
// no goroutines except the simulated medium):
//
//   - Digi XBee API frames in AP=1 and AP=2 (escaped): Transmit Request
//     0x10, Transmit Status 0x8B, Receive Packet 0x90, and a streaming
//     decoder that resynchronises on garbage and bad checksums;
//   - the Paho LoRaLink modem framing (1-byte node address, RSSI/SNR on
//     receive, TX modem answers ACK/NFC/TOT);
//   - SLIP (RFC 1055) and COBS framing for custom bridge MCUs;
//   - a line-oriented driver state machine for LoRa P2P ASCII modems,
//     Microchip RN2483 and RAK RUI3 (table-driven, see Modem);
//   - the raw-LoRa address header those modems (and the Semtech packet
//     forwarder) need, because raw LoRa has no addressing;
//   - the LoRa airtime formula, per-sub-band duty-cycle budgets and a
//     priority transmit queue;
//   - the Semtech UDP packet-forwarder messages (PUSH/PULL/TX_ACK, rxpk,
//     txpk, stat);
//   - a simulated radio medium (loss, latency, MTU, duty cycle) for tests
//     and benchmarks; radios/simradio adapts it to transport.Link.
//
// # Addresses and frame content
//
// Every link delivers frames as they are; the gateway's sn codec parses
// them. A frame is a bare MQTT-SN message or a forwarder-encapsulated one
// (0xFE). How the peer address is derived:
//
//   - XBee: the 64-bit source address of the Receive Packet (the 16-bit
//     address is only a routing hint that changes after a rejoin).
//   - LoRaLink: the 1-byte source address reported by the RX modem.
//   - SLIP/COBS: the serial port itself is one peer, the "serial bridge".
//     A bare MQTT-SN frame is one sensor wired to the port; a 0xFE frame
//     comes from a forwarder MCU, and the gateway decapsulates it and keys
//     the client by (bridge, wireless node ID). The link does not look
//     inside.
//   - RN2483/RUI3 (and the packet forwarder): the node ID of the address
//     header below.
//
// # Raw-LoRa address header
//
// Four bytes precede every MQTT-SN message on raw LoRa:
//
//	byte 0    control  1101 D 0 VV   magic 0xD, D = 1 downlink (gateway to
//	                                 node), VV = version (1)
//	byte 1    network ID
//	bytes 2-3 node ID, big endian (0 invalid, 0xFFFF broadcast downlink)
//
// So an uplink of network 7 from node 0x0102 starts D1 07 01 02, the
// gateway's answer D9 07 01 02. A LoRaWAN frame starts with an MHDR whose
// low five bits (RFU and Major) are zero; the control byte always has bit
// 4 and a version bit set, so the two never collide: DecodeHeader reports
// LoRaWAN frames as ErrLoRaWAN and frames of other networks (CheckHeader)
// as ErrOtherNetwork. docs/RADIO_HEADER.md has the full description.
//
// # Priorities
//
// Priority mirrors transport.Priority value for value (0 acknowledgements,
// 1 deliveries, 2 REGISTER, 3 ADVERTISE); radios does not import transport.
package radios
