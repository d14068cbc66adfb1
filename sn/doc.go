// Package sn is the MQTT-SN wire format: message types, flags, return codes,
// and an allocation-free encoder and decoder for MQTT-SN 1.2, including the
// forwarder encapsulation (ENCAPSULATED, 0xFE).
//
// The package is pure: it does no I/O and starts no goroutines.
//
// # Decoding
//
// Decode parses one datagram into a caller-owned Packet, a tagged value that
// holds one struct per message type. A gateway keeps one Packet per worker
// and reuses it, so decoding any message allocates nothing:
//
//	var p sn.Packet
//	if err := sn.Decode(datagram, &p); err != nil {
//		// errors.Is(err, sn.ErrBadLength), sn.ErrUnknownType, ...
//	}
//	switch p.Type {
//	case sn.TypePublish:
//		handle(&p.Publish) // p.Publish.Data aliases datagram
//	}
//
// Byte-slice fields of a decoded message (ClientID, TopicName, Data, ...)
// alias the input; copy them before reusing the input buffer.
//
// Decoding is strict: a Length field that disagrees with the datagram, a
// message shorter than its type's minimum, trailing bytes after a fixed-size
// message, reserved message types, a reserved TopicIdType, a reserved return
// code and an empty ClientId in CONNECT are all rejected with an error that
// matches one of the Err* sentinels under errors.Is. Flag bits that the
// specification marks "not used" for a message type are ignored.
//
// # Encoding
//
// Every message type has Append(dst []byte) ([]byte, error), which appends
// the encoded message to dst and picks the shortest length form. With a dst
// of sufficient capacity it allocates nothing.
//
// # Versions
//
// Only MQTT-SN 1.2 is implemented. MsgType is a logical message type, not
// a wire code: the mapping between the two lives in a per-version table
// (see Version), so MQTT-SN 2.0, whose codes differ, can be added beside it.
package sn
