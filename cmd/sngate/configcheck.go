package main

// Validation of a decoded Config: what the types alone cannot check.

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/sngate/sngate/transport/semtech"
)

// validate checks values the types cannot: enums, ranges, required
// fields and cross-references. Errors name the key.
func (c *Config) validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	c.validateMQTT(bad)
	c.validateSN(bad)
	c.validateBridge(bad)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (c *Config) validateMQTT(bad func(key, format string, args ...any)) {
	for i, l := range c.MQTT.Listeners {
		key := fmt.Sprintf("mqtt.listeners[%d]", i)
		switch l.Type {
		case "tcp", "ws":
			if l.Cert != "" || l.Key != "" {
				bad(key, "cert/key are for tls and wss listeners, not %s", l.Type)
			}
		case "tls", "wss":
			if l.Cert == "" || l.Key == "" {
				bad(key, "a %s listener needs cert and key", l.Type)
			}
		default:
			bad(key+".type", "%q is not one of tcp, tls, ws, wss", l.Type)
		}
		if l.Addr == "" {
			bad(key+".addr", "must not be empty")
		}
		if l.RequireClientCert && l.CA == "" {
			bad(key+".require_client_cert", "needs ca")
		}
		if l.Path != "" && l.Type != "ws" && l.Type != "wss" {
			bad(key+".path", "is for ws and wss listeners")
		}
	}
	if len(c.MQTT.ACL) > 0 && c.MQTT.ACLFile != "" {
		bad("mqtt.acl", "give the rules either in acl or in acl_file, not both")
	}
	for i, r := range c.MQTT.ACL {
		key := fmt.Sprintf("mqtt.acl[%d]", i)
		n := 0
		for _, set := range []bool{r.User != "", r.ClientID != "", r.All} {
			if set {
				n++
			}
		}
		if n > 1 {
			bad(key, "set at most one of user, client_id and all")
		}
		if strings.ContainsAny(r.User+r.ClientID, "\r\n") || strings.TrimSpace(r.User) != r.User || strings.TrimSpace(r.ClientID) != r.ClientID {
			bad(key, "user and client_id must not have line breaks or surrounding spaces")
		}
		switch r.Access {
		case "", "read", "write", "readwrite":
		default:
			bad(key+".access", "%q is not one of read, write, readwrite", r.Access)
		}
		if r.Topic == "" || strings.TrimSpace(r.Topic) != r.Topic || strings.ContainsAny(r.Topic, "\r\n") {
			bad(key+".topic", "must be a topic filter without surrounding spaces")
		}
	}
	if len(c.MQTT.ACL) > 0 {
		if _, err := buildACL(c.MQTT.ACL); err != nil {
			bad("mqtt.acl", "%v", err)
		}
	}
	lim := c.MQTT.Limits
	if lim.MaxInflight < 0 || lim.MaxInflight > 65535 {
		bad("mqtt.limits.max_inflight", "%d is outside 0..65535", lim.MaxInflight)
	}
	for key, v := range map[string]int{
		"mqtt.limits.max_sessions":                  lim.MaxSessions,
		"mqtt.limits.max_queued_messages":           lim.MaxQueuedMessages,
		"mqtt.limits.max_subscriptions_per_session": lim.MaxSubscriptionsPerSession,
		"mqtt.limits.max_topic_length":              lim.MaxTopicLength,
		"mqtt.limits.max_topic_levels":              lim.MaxTopicLevels,
		"mqtt.limits.max_retained_messages":         lim.MaxRetainedMessages,
	} {
		if v < 0 {
			bad(key, "must not be negative")
		}
	}
	if lim.MaxTopicLength > 65535 {
		bad("mqtt.limits.max_topic_length", "%d exceeds 65535", lim.MaxTopicLength)
	}
	if lim.MaxConnections < -1 {
		bad("mqtt.limits.max_connections", "must be -1 (no limit) or more")
	}
	if lim.MaxPacketSize < 0 || int64(lim.MaxPacketSize) > 268435460 {
		bad("mqtt.limits.max_packet_size", "%d is outside 0..268435460 (the MQTT maximum)", lim.MaxPacketSize)
	}
	if lim.ConnectTimeout < 0 || lim.WriteTimeout < 0 {
		bad("mqtt.limits", "connect_timeout and write_timeout must not be negative")
	}
	if lim.MaxRetainedBytes < 0 {
		bad("mqtt.limits.max_retained_bytes", "must not be negative")
	}
	if lim.MaxSessionExpiry < 0 {
		bad("mqtt.limits.max_session_expiry", "must not be negative")
	}
	if c.MQTT.SysInterval < 0 {
		bad("mqtt.sys_interval", "must not be negative")
	}
}

func (c *Config) validateSN(bad func(key, format string, args ...any)) {
	sn := &c.SN
	for i, u := range sn.UDP {
		if u.Listen == "" {
			bad(fmt.Sprintf("sn.udp[%d].listen", i), "must not be empty")
		}
		if u.ReadBuffer < 0 || u.WriteBuffer < 0 {
			bad(fmt.Sprintf("sn.udp[%d]", i), "read_buffer and write_buffer must not be negative")
		}
	}
	for i, d := range sn.DTLS {
		c.validateDTLS(fmt.Sprintf("sn.dtls[%d]", i), d, bad)
	}
	for i, s := range sn.Serial {
		key := fmt.Sprintf("sn.serial[%d]", i)
		switch s.Kind {
		case "xbee", "loralink", "slip", "cobs", "rn2483", "rak":
		default:
			bad(key+".kind", "%q is not one of xbee, loralink, slip, cobs, rn2483, rak", s.Kind)
		}
		if s.Device == "" {
			bad(key+".device", "must not be empty")
		}
		if s.Baud < 0 {
			bad(key+".baud", "must not be negative")
		}
		if s.APIMode != 0 && s.APIMode != 1 && s.APIMode != 2 {
			bad(key+".api_mode", "%d is not 1 or 2", s.APIMode)
		}
		if s.NetworkID < 0 || s.NetworkID > 255 {
			bad(key+".network_id", "%d is outside 0..255", s.NetworkID)
		}
		if s.SyncWord < 0 || s.SyncWord > 255 {
			bad(key+".sync_word", "%d is outside 0..255", s.SyncWord)
		}
		if s.XBeeRadius < 0 || s.XBeeRadius > 255 {
			bad(key+".xbee_radius", "%d is outside 0..255", s.XBeeRadius)
		}
		if s.FrequencyHz < 0 || s.FrequencyHz > math.MaxUint32 {
			bad(key+".frequency_hz", "%d is out of range", s.FrequencyHz)
		}
		if s.Kind == "rn2483" || s.Kind == "rak" {
			if s.FrequencyHz == 0 {
				bad(key+".frequency_hz", "is required for %s", s.Kind)
			}
			if s.LoRa.SF == 0 || s.LoRa.BandwidthHz == 0 {
				bad(key+".lora", "sf and bandwidth_hz are required for %s", s.Kind)
			}
		}
	}
	for i, st := range sn.Semtech {
		key := fmt.Sprintf("sn.semtech[%d]", i)
		if st.NetworkID < 0 || st.NetworkID > 255 {
			bad(key+".network_id", "%d is outside 0..255", st.NetworkID)
		}
		if st.RXDelay < 0 || st.TxLead < 0 || st.DedupWindow < 0 || st.FrameTTL < 0 {
			bad(key, "durations must not be negative")
		}
		if st.RFChain < 0 || st.RFChain > 1 {
			bad(key+".rf_chain", "%d is not 0 or 1", st.RFChain)
		}
		if st.BroadcastFrequencyHz < 0 || st.BroadcastFrequencyHz > math.MaxUint32 {
			bad(key+".broadcast_frequency_hz", "%d is out of range", st.BroadcastFrequencyHz)
		}
		for j, f := range st.Forwarders {
			if _, err := semtech.ParseEUI(f); err != nil {
				bad(fmt.Sprintf("%s.forwarders[%d]", key, j), "%q is not a gateway EUI (16 hex digits)", f)
			}
		}
		for k, v := range map[string]int{"max_forwarders": st.MaxForwarders, "max_nodes": st.MaxNodes,
			"node_queue": st.NodeQueue, "max_queued": st.MaxQueued, "max_inflight": st.MaxInflight,
			"rx_queue": st.RxQueue, "payload_limit": st.PayloadLimit, "preamble": st.Preamble} {
			if v < 0 {
				bad(key+"."+k, "must not be negative")
			}
		}
	}
	if sn.GatewayID < 1 || sn.GatewayID > 255 {
		bad("sn.gateway_id", "%d is outside 1..255", sn.GatewayID)
	}
	if sn.AdvertiseInterval < 0 || time.Duration(sn.AdvertiseInterval) > 65535*time.Second {
		bad("sn.advertise_interval", "%s is outside 0s..18h12m15s (ADVERTISE carries seconds in 16 bits)", sn.AdvertiseInterval)
	}
	if t := sn.Timers; t.KeepAliveTolerance < 1 {
		bad("sn.timers.keepalive_tolerance", "%g is below 1", t.KeepAliveTolerance)
	}
	if t := sn.Timers; t.SleepTolerance < 1 {
		bad("sn.timers.sleep_tolerance", "%g is below 1", t.SleepTolerance)
	}
	if sn.Timers.TRetry <= 0 {
		bad("sn.timers.t_retry", "must be positive")
	}
	if sn.Timers.NRetry < 1 {
		bad("sn.timers.n_retry", "must be at least 1")
	}
	if sn.Shards < 0 {
		bad("sn.shards", "must not be negative")
	}
	for key, v := range map[string]int{
		"sn.limits.max_clients":                     sn.Limits.MaxClients,
		"sn.limits.max_client_id_length":            sn.Limits.MaxClientIDLength,
		"sn.limits.max_topic_ids":                   sn.Limits.MaxTopicIDs,
		"sn.limits.max_packet_size":                 sn.Limits.MaxPacketSize,
		"sn.limits.inbox_size":                      sn.Limits.InboxSize,
		"sn.limits.max_pending_connects_per_source": sn.Limits.MaxPendingConnectsPerSource,
		"sn.limits.new_client_burst":                sn.Limits.NewClientBurst,
		"sn.limits.max_sources":                     sn.Limits.MaxSources,
	} {
		if v < 0 {
			bad(key, "must not be negative")
		}
	}
	if sn.Limits.NewClientRate < 0 {
		bad("sn.limits.new_client_rate", "must not be negative")
	}
	if sn.Limits.MaxTopicIDs > 0xFFFE {
		bad("sn.limits.max_topic_ids", "%d exceeds 65534", sn.Limits.MaxTopicIDs)
	}
	for i, f := range sn.Forwarders {
		if !validHostAddr(f) {
			bad(fmt.Sprintf("sn.forwarders[%d]", i), "%q is not an ip or ip:port", f)
		}
	}
	if sn.QoSMinus1Identity == "" {
		bad("sn.qos_minus1_identity", "must not be empty")
	}
	type topicKey struct {
		client string
		id     int
	}
	seen := map[topicKey]bool{}
	checkTopic := func(key, client, topic string, id int) {
		if topic == "" {
			bad(key+".topic", "must not be empty")
		}
		if strings.ContainsAny(topic, "+#") {
			bad(key+".topic", "%q has a wildcard", topic)
		}
		if id < 1 || id > 65534 {
			bad(key+".id", "%d is outside 1..65534", id)
		}
		k := topicKey{client, id}
		if seen[k] {
			bad(key+".id", "topic ID %d is defined twice for client %q", id, client)
		}
		seen[k] = true
	}
	for i, p := range sn.PredefinedTopics {
		key := fmt.Sprintf("sn.predefined_topics[%d]", i)
		if p.ClientID == "" {
			bad(key+".client_id", `must not be empty (use "*" for every client)`)
		}
		checkTopic(key, p.ClientID, p.Topic, p.ID)
	}
	ids := map[string]bool{}
	for i, cl := range sn.Clients {
		key := fmt.Sprintf("sn.clients[%d]", i)
		if cl.ClientID == "" {
			bad(key+".client_id", "must not be empty")
		}
		if ids[cl.ClientID] {
			bad(key+".client_id", "%q is listed twice", cl.ClientID)
		}
		ids[cl.ClientID] = true
		if cl.Address != "" && !validHostAddr(cl.Address) {
			bad(key+".address", "%q is not an ip or ip:port", cl.Address)
		}
		if cl.QoSMinus1 && cl.Address == "" && !sn.QoSMinus1 {
			bad(key+".qos_minus1", "needs address (QoS -1 publishes carry no client ID)")
		}
		for j, t := range cl.Predefined {
			checkTopic(fmt.Sprintf("%s.predefined[%d]", key, j), cl.ClientID, t.Topic, t.ID)
		}
	}
}

func (c *Config) validateDTLS(key string, d DTLSLink, bad func(key, format string, args ...any)) {
	if d.Listen == "" {
		bad(key+".listen", "must not be empty")
	}
	if len(d.PSK) == 0 && d.Cert == "" {
		bad(key, "needs psk entries or cert and key")
	}
	if (d.Cert == "") != (d.Key == "") {
		bad(key, "cert and key go together")
	}
	if d.RequireClientCert && d.CA == "" {
		bad(key+".require_client_cert", "needs ca")
	}
	for j, p := range d.PSK {
		pk := fmt.Sprintf("%s.psk[%d]", key, j)
		if p.Identity == "" {
			bad(pk+".identity", "must not be empty")
		}
		if _, err := decodeHexKey(p.KeyHex); err != nil {
			bad(pk+".key_hex", "%v", err)
		}
	}
	seen := map[string]bool{}
	for j, b := range d.Bindings {
		bk := fmt.Sprintf("%s.bindings[%d]", key, j)
		if seen[b.Identity] {
			bad(bk+".identity", "%q is bound twice", b.Identity)
		}
		seen[b.Identity] = true
		if b.Identity == "" {
			bad(bk+".identity", "must not be empty")
		}
		if len(b.ClientIDs) == 0 {
			bad(bk+".client_ids", "must list at least one client ID pattern")
		}
		for _, id := range b.ClientIDs {
			if id == "" {
				bad(bk+".client_ids", "an empty pattern")
			}
		}
	}
	if d.CID < -1 || d.CID > 255 {
		bad(key+".cid", "%d is outside -1..255", d.CID)
	}
	if d.HandshakeTimeout < 0 || d.IdleTimeout < 0 {
		bad(key, "timeouts must not be negative")
	}
}

// validHostAddr reports whether s is an IP address or ip:port.
func validHostAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}
