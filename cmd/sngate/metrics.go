package main

// Prometheus metrics. Collectors read the packages' Stats() snapshots at
// scrape time, so the hot paths only bump their own atomic counters.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/bridge"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/broker/store"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/dtls"
	"github.com/sngate/sngate/transport/semtech"
	"github.com/sngate/sngate/transport/serial"
	"github.com/sngate/sngate/transport/udp"
)

// components are the running parts that metrics and $SYS read. Any of
// them may be nil or empty.
type components struct {
	broker *broker.Server
	mqtt   []*listeners.Listener
	// gateway adds the MQTT-SN gateway's samples (see metrics_sn.go).
	gateway func(m *collector, ch chan<- prometheus.Metric)
	udp     []*udp.Link
	dtls    []*dtls.Listener
	serial  []*serial.Link
	semtech []*semtech.Link
	bridge  *bridge.Bridge
	store   *store.Store
}

// metric is a shorthand for a described metric.
type metric struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
}

func newMetric(name, help string, kind prometheus.ValueType, labels ...string) metric {
	return metric{desc: prometheus.NewDesc("sngate_"+name, help, labels, nil), kind: kind}
}

// emit sends one sample; a label mismatch (a programming error) is
// dropped rather than panicking in a scrape.
func (m metric) emit(ch chan<- prometheus.Metric, v float64, labels ...string) {
	s, err := prometheus.NewConstMetric(m.desc, m.kind, v, labels...)
	if err == nil {
		ch <- s
	}
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// collector exposes the components' statistics.
type collector struct {
	c *components

	brokerSessions, brokerConnected, brokerSubs, brokerRetained, brokerQueued, brokerInflight     metric
	brokerIn, brokerOut, brokerInBytes, brokerDropped, brokerRejected, brokerEvents, brokerUptime metric

	mqttConns, mqttAccepted, mqttRejected, mqttTooLarge, mqttDeferred metric

	snClients, snFrames, snPublish, snRetransmits, snEvents, snRejected, snDropped metric
	snLinkClients, snLinkPublish                                                   metric

	linkFrames, linkDropped, linkErrors                                         metric
	dtlsAssoc, dtlsPending, dtlsHandshakes, dtlsFailures                        metric
	serialOpens, serialFailures, radioRSSI, radioSNR, airtimeUsed, airtimeLimit metric

	bm bridgeMetrics
	sm storeMetrics
}

func newCollector(c *components) *collector {
	return &collector{
		c:               c,
		brokerSessions:  newMetric("broker_sessions", "Broker sessions, connected or not.", gauge),
		brokerConnected: newMetric("broker_sessions_connected", "Broker sessions attached to a connection (MQTT or MQTT-SN).", gauge),
		brokerSubs:      newMetric("broker_subscriptions", "Subscriptions, shared ones included.", gauge),
		brokerRetained:  newMetric("broker_retained_messages", "Retained messages.", gauge),
		brokerQueued:    newMetric("broker_queued_messages", "Messages in session queues (offline and sleeping clients included).", gauge),
		brokerInflight:  newMetric("broker_inflight_messages", "Outbound QoS 1/2 messages awaiting acknowledgement.", gauge),
		brokerIn:        newMetric("broker_messages_received_total", "Messages published to the broker.", counter),
		brokerOut:       newMetric("broker_messages_sent_total", "Deliveries accepted by sessions, resends included.", counter),
		brokerInBytes:   newMetric("broker_received_bytes_total", "Payload bytes published to the broker.", counter),
		brokerDropped:   newMetric("broker_dropped_messages_total", "Messages the broker dropped, by reason.", counter, "reason"),
		brokerRejected:  newMetric("broker_rejections_total", "Requests the broker refused, by reason.", counter, "reason"),
		brokerEvents:    newMetric("broker_session_events_total", "Session events, by kind.", counter, "event"),
		brokerUptime:    newMetric("broker_uptime_seconds", "Seconds since the broker started.", gauge),

		mqttConns:    newMetric("mqtt_connections", "Open MQTT connections per listener.", gauge, "listener", "kind"),
		mqttAccepted: newMetric("mqtt_connections_accepted_total", "MQTT connections accepted per listener.", counter, "listener", "kind"),
		mqttRejected: newMetric("mqtt_connections_rejected_total", "MQTT connections closed at accept (connection limit).", counter, "listener", "kind"),
		mqttTooLarge: newMetric("mqtt_dropped_too_large_total", "Deliveries not sent because they exceeded the client's maximum packet size.", counter, "listener", "kind"),
		mqttDeferred: newMetric("mqtt_deliveries_deferred_total", "Deliveries deferred because a client's write buffer was full (kept queued).", counter, "listener", "kind"),

		snClients:     newMetric("sn_clients", "MQTT-SN clients by state.", gauge, "state"),
		snFrames:      newMetric("sn_frames_total", "MQTT-SN frames handled by the gateway.", counter, "direction"),
		snPublish:     newMetric("sn_publish_total", "MQTT-SN PUBLISH messages: in (accepted from clients, qos -1 separately) and out (first transmissions).", counter, "direction", "qos"),
		snRetransmits: newMetric("sn_retransmissions_total", "Gateway requests resent to clients (REGISTER, PUBLISH, PUBREL, will prompts).", counter),
		snEvents:      newMetric("sn_client_events_total", "MQTT-SN client events, by kind.", counter, "event"),
		snRejected:    newMetric("sn_rejections_total", "MQTT-SN requests refused, by reason.", counter, "reason"),
		snDropped:     newMetric("sn_drops_total", "MQTT-SN frames or deliveries dropped, by reason.", counter, "reason"),
		snLinkClients: newMetric("sn_link_clients", "MQTT-SN clients by link and state.", gauge, "link", "state"),
		snLinkPublish: newMetric("sn_link_publish_total", "MQTT-SN PUBLISH by link, direction and QoS (in: frames received; out: first transmissions).", counter, "link", "direction", "qos"),

		linkFrames:     newMetric("link_frames_total", "Frames per MQTT-SN link and direction.", counter, "link", "kind", "direction"),
		linkDropped:    newMetric("link_drops_total", "Frames a link dropped, by reason.", counter, "link", "kind", "reason"),
		linkErrors:     newMetric("link_errors_total", "Link read/write errors.", counter, "link", "kind"),
		dtlsAssoc:      newMetric("dtls_associations", "Established DTLS associations.", gauge, "link"),
		dtlsPending:    newMetric("dtls_handshakes_pending", "DTLS handshakes in progress (cookie verified).", gauge, "link"),
		dtlsHandshakes: newMetric("dtls_handshakes_total", "DTLS handshakes by result.", counter, "link", "result"),
		dtlsFailures:   newMetric("dtls_handshake_failures_total", "Failed DTLS handshakes by reason.", counter, "link", "reason"),
		serialOpens:    newMetric("serial_device_opens_total", "Successful serial device opens (1 + reopens).", counter, "link"),
		serialFailures: newMetric("serial_device_failures_total", "Serial device failures (each followed by a reopen).", counter, "link"),
		radioRSSI:      newMetric("radio_rssi_dbm", "Last RSSI heard per radio node.", gauge, "link", "node"),
		radioSNR:       newMetric("radio_snr_db", "Last SNR heard per radio node.", gauge, "link", "node"),
		airtimeUsed:    newMetric("radio_airtime_used_seconds", "Airtime used in the duty-cycle window.", gauge, "link"),
		airtimeLimit:   newMetric("radio_airtime_limit_seconds", "Airtime allowed per duty-cycle window (0: unlimited).", gauge, "link"),

		bm: newBridgeMetrics(),
		sm: newStoreMetrics(),
	}
}

// Describe sends nothing: the collector is unchecked, since the set of
// links and radio nodes changes at run time.
func (*collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every component's statistics.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	if m.c.broker != nil {
		m.collectBroker(ch, m.c.broker.Stats())
	}
	for _, l := range m.c.mqtt {
		s := l.Stats()
		m.mqttConns.emit(ch, float64(s.Connections), s.Name, s.Kind)
		m.mqttAccepted.emit(ch, float64(s.Accepted), s.Name, s.Kind)
		m.mqttRejected.emit(ch, float64(s.Rejected), s.Name, s.Kind)
		m.mqttTooLarge.emit(ch, float64(s.DroppedTooLarge), s.Name, s.Kind)
		m.mqttDeferred.emit(ch, float64(s.Deferred), s.Name, s.Kind)
	}
	if m.c.gateway != nil {
		m.c.gateway(m, ch)
	}
	for _, l := range m.c.udp {
		s := l.Stats()
		m.linkFrames.emit(ch, float64(s.Received), l.Name(), "udp", "in")
		m.linkFrames.emit(ch, float64(s.Sent), l.Name(), "udp", "out")
		m.linkDropped.emit(ch, float64(s.Oversize), l.Name(), "udp", "oversize")
		m.linkErrors.emit(ch, float64(s.Errors), l.Name(), "udp")
	}
	for _, l := range m.c.dtls {
		m.collectDTLS(ch, l.Name(), l.Stats())
	}
	now := time.Now()
	for _, l := range m.c.serial {
		m.collectSerial(ch, l, now)
	}
	for _, l := range m.c.semtech {
		m.collectSemtech(ch, l)
	}
	if m.c.bridge != nil {
		m.bm.collect(ch, m.c.bridge.Stats())
	}
	if m.c.store != nil {
		m.sm.collect(ch, m.c.store.Stats())
	}
}

func (m *collector) collectBroker(ch chan<- prometheus.Metric, s broker.Stats) {
	m.brokerSessions.emit(ch, float64(s.Sessions))
	m.brokerConnected.emit(ch, float64(s.SessionsConnected))
	m.brokerSubs.emit(ch, float64(s.Subscriptions))
	m.brokerRetained.emit(ch, float64(s.Retained))
	m.brokerQueued.emit(ch, float64(s.Queued))
	m.brokerInflight.emit(ch, float64(s.Inflight))
	m.brokerIn.emit(ch, float64(s.MessagesReceived))
	m.brokerOut.emit(ch, float64(s.MessagesSent))
	m.brokerInBytes.emit(ch, float64(s.BytesReceived))
	m.brokerUptime.emit(ch, s.Uptime.Seconds())
	for reason, v := range map[string]uint64{
		"queue_full": s.DroppedQueueFull, "qos0_offline": s.DroppedQoS0, "expired": s.DroppedExpired,
	} {
		m.brokerDropped.emit(ch, float64(v), reason)
	}
	for reason, v := range map[string]uint64{
		"max_sessions": s.SessionsRejected, "max_subscriptions": s.SubscriptionsRejected,
		"retained_limit": s.RetainedRejected, "auth": s.AuthFailures, "acl": s.ACLDenied,
		"bad_topic": s.BadTopics,
	} {
		m.brokerRejected.emit(ch, float64(v), reason)
	}
	for ev, v := range map[string]uint64{
		"taken_over": s.SessionsTakenOver, "expired": s.SessionsExpired,
		"will_published": s.WillsPublished, "store_error": s.StoreErrors,
	} {
		m.brokerEvents.emit(ch, float64(v), ev)
	}
}

func (m *collector) collectDTLS(ch chan<- prometheus.Metric, name string, s dtls.Stats) {
	m.dtlsAssoc.emit(ch, float64(s.Associations), name)
	m.dtlsPending.emit(ch, float64(s.Pending), name)
	m.dtlsHandshakes.emit(ch, float64(s.HandshakesOK), name, "ok")
	m.dtlsHandshakes.emit(ch, float64(s.HandshakesFailed), name, "failed")
	for reason, v := range map[string]uint64{
		"timeout": s.FailedTimeout, "auth": s.FailedAuth, "aborted": s.FailedAborted, "other": s.FailedOther,
	} {
		m.dtlsFailures.emit(ch, float64(v), name, reason)
	}
	m.linkFrames.emit(ch, float64(s.FramesIn), name, "dtls", "in")
	m.linkFrames.emit(ch, float64(s.FramesOut), name, "dtls", "out")
	for reason, v := range map[string]uint64{
		"pending_full": s.DropPendingFull, "max_associations": s.DropMaxAssociations,
		"bad_cookie": s.DropBadCookie, "unknown_source": s.DropUnknownSource,
		"malformed": s.DropMalformed, "peer_queue_full": s.DropPeerQueue, "too_large": s.DropTooLarge,
		"unverified_evicted": s.UnverifiedEvicted,
	} {
		m.linkDropped.emit(ch, float64(v), name, "dtls", reason)
	}
}

func (m *collector) collectSerial(ch chan<- prometheus.Metric, l *serial.Link, now time.Time) {
	name := l.Name()
	s := l.Stats()
	m.linkFrames.emit(ch, float64(s.RxFrames), name, "serial", "in")
	m.linkFrames.emit(ch, float64(s.TxFrames), name, "serial", "out")
	for reason, v := range map[string]uint64{
		"rx_queue_full": s.RxDropped, "too_long": s.RxTooLong, "not_for_us": s.RxRejected,
		"tx_failed": s.TxFailures, "congested": s.TxCongested,
	} {
		m.linkDropped.emit(ch, float64(v), name, "serial", reason)
	}
	m.serialOpens.emit(ch, float64(s.Opens), name)
	m.serialFailures.emit(ch, float64(s.Failures), name)
	for addr, sig := range l.Signals() {
		node := nodeLabel(addr)
		m.radioRSSI.emit(ch, float64(sig.RSSI), name, node)
		m.radioSNR.emit(ch, float64(sig.SNR), name, node)
	}
	if b := l.Budget(); b != nil {
		m.airtimeUsed.emit(ch, b.Used(now).Seconds(), name)
		m.airtimeLimit.emit(ch, b.Limit().Seconds(), name)
	}
}

// nodeLabel renders a radio address for a label.
func nodeLabel(a transport.Addr) string { return a.String() }

// metricsServer serves /metrics and /healthz.
type metricsServer struct {
	srv     *http.Server
	ln      net.Listener
	healthy atomic.Bool
}

// startMetrics listens on addr and serves the registry. The returned
// server reports healthy until setHealthy(false).
func startMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	ms := &metricsServer{ln: ln}
	ms.healthy.Store(true)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ms.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "stopping")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ms.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := ms.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return ms, nil
}

// Addr returns the bound address.
func (ms *metricsServer) Addr() string { return ms.ln.Addr().String() }

// Close stops the server, letting requests in progress finish briefly.
func (ms *metricsServer) Close() error {
	ms.healthy.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := ms.srv.Shutdown(ctx); err != nil {
		return ms.srv.Close()
	}
	return nil
}

// newRegistry builds the registry of sngate's collectors plus the Go
// runtime and process collectors.
func newRegistry(c *components) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(c),
	)
	return reg
}
