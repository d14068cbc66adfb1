package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the result of one run. Its JSON form is what 'sngate bench
// --json' prints; the top-level rate, loss and latency fields are the
// headline figures of every scenario.
type Report struct {
	Scenario      string  `json:"scenario"`        // Scenario is the scenario run.
	Target        string  `json:"target"`          // Target describes the gateway benchmarked.
	MQTT          string  `json:"mqtt,omitempty"`  // MQTT is the broker address used, if any.
	Clients       int     `json:"clients"`         // Clients is the number of simulated clients.
	Ready         int     `json:"ready"`           // Ready counts the clients that finished their setup.
	Sockets       int     `json:"sockets"`         // Sockets is the number of UDP sockets used.
	Sources       int     `json:"sources"`         // Sources is the number of local source addresses.
	Workers       int     `json:"workers"`         // Workers is the number of client-driving goroutines.
	QoS           int     `json:"qos"`             // QoS is the MQTT-SN QoS.
	Size          int     `json:"size"`            // Size is the payload size in bytes.
	RatePerClient float64 `json:"rate_per_client"` // RatePerClient is Config.Rate; 0 = as fast as possible.
	SetupS        float64 `json:"setup_s"`         // SetupS is the duration of the setup phase.
	// DurationS is the measured phase: sending (publish, subscribe), the
	// connects (connect) or the wake-ups (sleep).
	DurationS float64 `json:"duration_s"`
	// Offered counts messages sent (publish), sent times subscribers
	// (subscribe), queued for sleepers (sleep) or connect attempts
	// (connect); Delivered counts distinct ones received, or connects
	// accepted.
	Offered         uint64  `json:"offered"`
	Delivered       uint64  `json:"delivered"`
	Duplicates      uint64  `json:"duplicates"`          // Duplicates counts messages received more than once.
	Published       uint64  `json:"published,omitempty"` // Published counts the MQTT publisher's messages (subscribe).
	OfferedPerSec   float64 `json:"offered_per_sec"`     // OfferedPerSec is Offered over the measured phase.
	DeliveredPerSec float64 `json:"delivered_per_sec"`   // DeliveredPerSec is Delivered up to the last delivery.
	LossPct         float64 `json:"loss_pct"`            // LossPct is the share of Offered not delivered.
	// The headline latency; LatencyKind says what it measures.
	P50Ms       float64 `json:"p50_ms"`       // P50Ms is the headline median latency.
	P90Ms       float64 `json:"p90_ms"`       // P90Ms is the headline 90th percentile.
	P99Ms       float64 `json:"p99_ms"`       // P99Ms is the headline 99th percentile.
	MaxMs       float64 `json:"max_ms"`       // MaxMs is the headline maximum.
	LatencyKind string  `json:"latency_kind"` // LatencyKind says what the headline latency measures.
	// Delivery is the publish-to-receive latency (publish, subscribe);
	// Ack is the PUBACK/PUBCOMP round trip (publish QoS 1/2); Connack
	// is CONNECT to CONNACK; Wake is PINGREQ(ClientId) to PINGRESP
	// (sleep).
	Delivery *Latency `json:"delivery_latency,omitempty"`
	Ack      *Latency `json:"ack_latency,omitempty"`
	Connack  *Latency `json:"connack_latency,omitempty"`
	Wake     *Latency `json:"wake_latency,omitempty"`

	Sleep           *SleepStats       `json:"sleep,omitempty"`     // Sleep holds the sleep scenario's figures.
	Gateway         *GatewayStats     `json:"gateway,omitempty"`   // Gateway holds the gateway process's figures.
	ToolCPUS        float64           `json:"tool_cpu_s"`          // ToolCPUS is this process's CPU time in the measured phase.
	ToolCPUUsPerMsg float64           `json:"tool_cpu_us_per_msg"` // ToolCPUUsPerMsg is ToolCPUS per message.
	Errors          map[string]uint64 `json:"errors"`              // Errors counts failures and anomalies by kind.
	Notes           []string          `json:"notes,omitempty"`     // Notes qualify the figures.

	lat, ack, wake, conn *hist
	sink                 *nullSink
	deliveryS            float64
	noDelivery           bool
}

// SleepStats are the sleep scenario's figures.
type SleepStats struct {
	Asleep      int     `json:"asleep"`              // Asleep counts the clients that went to sleep.
	PerClient   int     `json:"messages_per_client"` // PerClient is the messages queued per client.
	PublishS    float64 `json:"publish_s"`           // PublishS is the time to publish them all.
	Woken       int     `json:"woken"`               // Woken counts the clients that woke and finished.
	Expected    uint64  `json:"expected"`            // Expected is Asleep times PerClient.
	Drained     uint64  `json:"drained"`             // Drained counts distinct messages received.
	Lost        uint64  `json:"lost"`                // Lost is Expected minus Drained.
	DrainS      float64 `json:"drain_s"`             // DrainS is the wake-up phase's duration.
	DrainPerSec float64 `json:"drain_per_sec"`       // DrainPerSec is Drained over DrainS.
}

// GatewayStats are the gateway process's figures, when it is visible
// (--pid, --metrics, or the in-process gateway).
type GatewayStats struct {
	Source         string  `json:"source"`                     // Source says where the figures come from.
	RSSBeforeBytes int64   `json:"rss_before_bytes"`           // RSSBeforeBytes is the RSS before the measured phase.
	RSSAfterBytes  int64   `json:"rss_after_bytes"`            // RSSAfterBytes is the RSS after it.
	RSSAsleepBytes int64   `json:"rss_asleep_bytes,omitempty"` // RSSAsleepBytes is the RSS with every client asleep (sleep).
	RSSQueuedBytes int64   `json:"rss_queued_bytes,omitempty"` // RSSQueuedBytes is the RSS with the messages queued (sleep).
	CPUSeconds     float64 `json:"cpu_s"`                      // CPUSeconds is the CPU time in the measured phase.
	CPUUsPerMsg    float64 `json:"cpu_us_per_msg,omitempty"`   // CPUUsPerMsg is CPUSeconds per delivered message.
	// CPUUsPerConnect is the gateway CPU per accepted connect (connect).
	CPUUsPerConnect float64 `json:"cpu_us_per_connect,omitempty"`
	// BytesPerClient is the RSS growth per connected (connect) or
	// sleeping (sleep) client; HeapBytesPerClient the Go heap growth,
	// for the in-process gateway only.
	BytesPerClient     float64 `json:"bytes_per_client,omitempty"`
	HeapBytesPerClient float64 `json:"heap_bytes_per_client,omitempty"`
	Error              string  `json:"error,omitempty"` // Error is the last failure to read the figures.
}

func newReport(c *Config) *Report {
	return &Report{
		Scenario: c.Scenario, Target: "udp " + c.Gateway, Clients: c.Clients, QoS: c.QoS, Size: c.Size,
		RatePerClient: c.Rate, Errors: make(map[string]uint64),
		lat: newHist(), ack: newHist(), wake: newHist(), conn: newHist(),
	}
}

func (rep *Report) note(s string) { rep.Notes = append(rep.Notes, s) }

// finish computes the derived figures.
func (rep *Report) finish() {
	if rep.DurationS > 0 {
		rep.OfferedPerSec = float64(rep.Offered) / rep.DurationS
	}
	if rep.deliveryS > 0 {
		rep.DeliveredPerSec = float64(rep.Delivered) / rep.deliveryS
	}
	if rep.Offered > 0 && !rep.noDelivery {
		rep.LossPct = 100 * float64(rep.Offered-min(rep.Delivered, rep.Offered)) / float64(rep.Offered)
	}
	opt := func(h *hist) *Latency {
		if h.n == 0 {
			return nil
		}
		s := h.summary()
		return &s
	}
	rep.Delivery, rep.Ack, rep.Wake, rep.Connack = opt(rep.lat), opt(rep.ack), opt(rep.wake), opt(rep.conn)
	var head *Latency
	switch rep.Scenario {
	case ScenarioConnect:
		head = rep.Connack
	case ScenarioSleep:
		head = rep.Wake
	default:
		head = rep.Delivery
	}
	if head != nil {
		rep.P50Ms, rep.P90Ms, rep.P99Ms, rep.MaxMs = head.P50Ms, head.P90Ms, head.P99Ms, head.MaxMs
	} else {
		rep.LatencyKind = ""
	}
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	if err := e.Encode(rep); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

// WriteTable writes the report as a readable table.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	rate := "as fast as possible"
	if rep.RatePerClient > 0 {
		rate = fmt.Sprintf("%g msg/s per client", rep.RatePerClient)
		if rep.Scenario == ScenarioSubscribe {
			rate = fmt.Sprintf("%g msg/s published", rep.RatePerClient)
		}
	}
	p("sngate bench\t%s, QoS %d, %d clients, %d-byte payload, %s", rep.Scenario, rep.QoS, rep.Clients, rep.Size, rate)
	p("target\t%s", rep.Target)
	if rep.MQTT != "" {
		p("MQTT\t%s", rep.MQTT)
	}
	p("engine\t%d sockets, %d source addresses, %d workers", rep.Sockets, rep.Sources, rep.Workers)
	p("setup\t%.3f s, %d of %d clients ready", rep.SetupS, rep.Ready, rep.Clients)
	p("")
	switch rep.Scenario {
	case ScenarioConnect:
		p("\tattempted\tconnected")
		p("clients\t%d\t%d", rep.Offered, rep.Delivered)
		p("connects/s\t\t%s", num(rep.DeliveredPerSec))
		p("duration\t%.3f s", rep.DurationS)
	default:
		p("\toffered\tdelivered")
		p("messages\t%d\t%d", rep.Offered, rep.Delivered)
		p("msg/s\t%s\t%s", num(rep.OfferedPerSec), num(rep.DeliveredPerSec))
		p("duration\t%.3f s", rep.DurationS)
		if !rep.noDelivery {
			p("loss\t%.3f %%", rep.LossPct)
		}
		p("duplicates\t%d", rep.Duplicates)
	}
	if s := rep.Sleep; s != nil {
		p("sleeping\t%d clients, %d messages each, published in %.3f s", s.Asleep, s.PerClient, s.PublishS)
		p("drain\t%d of %d clients woke and drained, %s msg/s, lost %d", s.Woken, s.Asleep, num(s.DrainPerSec), s.Lost)
	}
	p("")
	p("latency (ms)\tp50\tp90\tp99\tmax\tmean\tsamples")
	row := func(name string, l *Latency) {
		if l != nil {
			p("%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d", name, l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, l.MeanMs, l.Samples)
		}
	}
	row("delivery", rep.Delivery)
	row("PUBACK/PUBCOMP", rep.Ack)
	row("CONNACK", rep.Connack)
	row("wake+drain", rep.Wake)
	p("")
	if g := rep.Gateway; g != nil {
		p("gateway\t%s", g.Source)
		if g.Error != "" {
			p("\terror: %s", g.Error)
		}
		if g.RSSAfterBytes > 0 {
			p("\tRSS %s -> %s, CPU %.3f s", mib(g.RSSBeforeBytes), mib(g.RSSAfterBytes), g.CPUSeconds)
		}
		if g.RSSAsleepBytes > 0 {
			p("\tRSS asleep %s, with queued messages %s", mib(g.RSSAsleepBytes), mib(g.RSSQueuedBytes))
		}
		if g.CPUUsPerMsg > 0 {
			p("\t%.2f µs CPU per message", g.CPUUsPerMsg)
		}
		if g.CPUUsPerConnect > 0 {
			p("\t%.2f µs CPU per connect", g.CPUUsPerConnect)
		}
		if g.BytesPerClient != 0 {
			p("\t%.0f bytes RSS per client", g.BytesPerClient)
		}
		if g.HeapBytesPerClient != 0 {
			p("\t%.0f bytes Go heap per client", g.HeapBytesPerClient)
		}
	}
	if rep.ToolCPUS > 0 {
		p("tool CPU\t%.3f s, %.2f µs per message", rep.ToolCPUS, rep.ToolCPUUsPerMsg)
	}
	if len(rep.Errors) == 0 {
		p("errors\tnone")
	} else {
		keys := make([]string, 0, len(rep.Errors))
		for k := range rep.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			label := ""
			if i == 0 {
				label = "errors"
			}
			p("%s\t%d\t%s", label, rep.Errors[k], k)
		}
	}
	for i, n := range rep.Notes {
		label := ""
		if i == 0 {
			label = "notes"
		}
		p("%s\t%s", label, n)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

// num formats a rate with thousands separators.
func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
