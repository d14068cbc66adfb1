package packets

// fullProps returns properties with every field set, for the kinds that
// carry them; encoding filters them by packet type.
func fullProps() Properties {
	return Properties{
		PayloadFormat: 1, RequestProblemInfo: 1, RequestResponseInfo: 1,
		MaximumQoS: 1, RetainAvailable: 1, WildcardSubAvailable: 1, SubIDAvailable: 1,
		SharedSubAvailable: 1, ServerKeepAlive: 30, ReceiveMaximum: 100,
		TopicAliasMaximum: 10, TopicAlias: 3, MessageExpiry: 3600, SessionExpiry: 7200,
		WillDelay: 5, MaximumPacketSize: 65536, ContentType: "text/plain",
		ResponseTopic: "reply/here", AssignedClientID: "auto-1", AuthMethod: "SCRAM",
		ResponseInfo: "resp/", ServerReference: "other:1883", ReasonString: "because",
		CorrelationData: []byte{1, 2, 3}, AuthData: []byte{9, 8},
		SubscriptionIDs: []uint32{7},
		User:            []UserProperty{{"k", "v"}, {"k", "v2"}, {"", ""}},
	}
}

type sample struct {
	name    string
	version byte
	p       Packet
}

// samples returns one packet of every type for every protocol level,
// plus edge cases, for round-trip tests and fuzz seeds.
func samples() []sample {
	var out []sample
	for _, v := range []byte{V311, V5} {
		fp := fullProps()
		zeroMaxQoS := Properties{}
		zeroMaxQoS.Set(PropMaximumQoS)
		zeroMaxQoS.Set(PropRetainAvailable)
		zeroMaxQoS.Set(PropServerKeepAlive)
		pubProps := fp
		pubProps.SubscriptionIDs = []uint32{1, 268435455, 300}
		out = append(out,
			sample{"connect-min", v, &Connect{Version: v, CleanStart: true, KeepAlive: 60, ClientID: "c1"}},
			sample{"connect-full", v, &Connect{Version: v, KeepAlive: 10, ClientID: "client-ü",
				WillFlag: true, WillQoS: 2, WillRetain: true, WillTopic: "will/t",
				WillPayload: []byte("bye"), WillProps: fp, UsernameFlag: true, Username: "u",
				PasswordFlag: true, Password: []byte{0, 1, 2}, Props: fp}},
			sample{"connect-empty-user", v, &Connect{Version: v, UsernameFlag: true, PasswordFlag: true, Password: []byte{}}},
			sample{"connack", v, &Connack{SessionPresent: true, ReasonCode: 0, Props: fp}},
			sample{"connack-zero-props", v, &Connack{ReasonCode: 0, Props: zeroMaxQoS}},
			sample{"connack-refused", v, &Connack{ReasonCode: map[byte]byte{V311: 5, V5: 0x87}[v]}},
			sample{"publish-qos0", v, &Publish{Topic: "a/b", Payload: []byte("hello")}},
			sample{"publish-qos1", v, &Publish{QoS: 1, Dup: true, Retain: true, Topic: "a/b", PacketID: 7, Payload: []byte{}}},
			sample{"publish-qos2-props", v, &Publish{QoS: 2, Topic: "x", PacketID: 65535, Payload: make([]byte, 300), Props: pubProps}},
			sample{"puback", v, &Ack{Kind: PUBACK, PacketID: 1}},
			sample{"puback-rc", v, &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: 0x10}},
			sample{"pubrec-props", v, &Ack{Kind: PUBREC, PacketID: 2, ReasonCode: 0x87, Props: fp}},
			sample{"pubrel", v, &Ack{Kind: PUBREL, PacketID: 3, ReasonCode: 0x92}},
			sample{"pubcomp", v, &Ack{Kind: PUBCOMP, PacketID: 4, Props: Properties{ReasonString: "ok"}}},
			sample{"subscribe", v, &Subscribe{PacketID: 9, Props: Properties{SubscriptionIDs: []uint32{42}, User: []UserProperty{{"a", "b"}}},
				Filters: []SubOption{{Filter: "a/+", QoS: 1}, {Filter: "#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}},
			sample{"suback", v, &Suback{PacketID: 9, ReasonCodes: []byte{0, 1, 2, 0x80}, Props: fp}},
			sample{"unsubscribe", v, &Unsubscribe{PacketID: 10, Filters: []string{"a/+", "b"}, Props: fp}},
			sample{"unsuback", v, &Unsuback{PacketID: 10, ReasonCodes: []byte{0, 0x11}, Props: fp}},
			sample{"pingreq", v, &Pingreq{}},
			sample{"pingresp", v, &Pingresp{}},
			sample{"disconnect", v, &Disconnect{}},
			sample{"disconnect-rc", v, &Disconnect{ReasonCode: 0x04, Props: fp}},
		)
	}
	out = append(out,
		sample{"connect-31", V31, &Connect{Version: V31, CleanStart: true, ClientID: "old"}},
		sample{"auth", V5, &Auth{ReasonCode: 0x18, Props: Properties{AuthMethod: "m", AuthData: []byte("d")}}},
		sample{"auth-empty", V5, &Auth{}},
	)
	return out
}
