package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/transport/udp"
)

// LocalConfig configures an in-process broker and gateway.
type LocalConfig struct {
	// SNAddr and MQTTAddr are the listen addresses (default
	// 127.0.0.1:0 each: a free port).
	SNAddr   string
	MQTTAddr string
	// Shards is the gateway's shard count (default GOMAXPROCS).
	Shards int
	// Logger receives the broker's and gateway's logs; nil discards them
	// (the gateway logs every client's state changes at info level).
	Logger *slog.Logger
}

// Local is a broker, its MQTT TCP listener and an MQTT-SN gateway on a
// UDP link, all in this process: the target of in-process runs, tests
// and the documented benchmark harness.
type Local struct {
	Broker   *broker.Server   // Broker is the broker core.
	Gateway  *gateway.Gateway // Gateway is the MQTT-SN gateway.
	Link     *udp.Link        // Link is the gateway's UDP link.
	MQTT     *listeners.Group // MQTT is the broker's TCP listener.
	SNAddr   string           // the gateway's bound UDP address
	MQTTAddr string           // the broker's bound TCP address
	served   chan error
}

// StartLocal starts a broker and a gateway with benchmark-friendly
// bounds: no per-source admission limits, QoS -1 allowed from anyone,
// no $SYS publications, large socket buffers.
func StartLocal(cfg LocalConfig) (*Local, error) {
	if cfg.SNAddr == "" {
		cfg.SNAddr = "127.0.0.1:0"
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = "127.0.0.1:0"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bcfg := broker.DefaultConfig()
	bcfg.SysInterval = 0
	bcfg.MaxSessions = 0
	srv, err := broker.New(bcfg, broker.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("bench: local broker: %w", err)
	}
	grp, err := listeners.Start(srv, log, listeners.Config{Kind: listeners.KindTCP, Addr: cfg.MQTTAddr,
		MaxConnections: -1})
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("bench: local MQTT listener: %w", err)
	}
	link, err := udp.Listen(udp.Config{Addr: cfg.SNAddr, ReadBuffer: 4 << 20, WriteBuffer: 4 << 20})
	if err != nil {
		grp.Close()
		srv.Close()
		return nil, fmt.Errorf("bench: local MQTT-SN link: %w", err)
	}
	gcfg := gateway.DefaultConfig()
	if cfg.Shards > 0 {
		gcfg.Shards = cfg.Shards
	}
	gcfg.NewClientRate, gcfg.NewClientBurst = 1e9, 1<<30
	gcfg.AllowQoSMinus1 = true
	gcfg.Logger = log
	gw, err := gateway.New(gcfg, srv, link)
	if err != nil {
		link.Close()
		grp.Close()
		srv.Close()
		return nil, fmt.Errorf("bench: local gateway: %w", err)
	}
	l := &Local{Broker: srv, Gateway: gw, Link: link, MQTT: grp, SNAddr: link.LocalAddr().String(),
		served: make(chan error, 1)}
	if a := grp.Listeners()[0].Addr(); a != nil {
		l.MQTTAddr = a.String()
	}
	go func() { l.served <- gw.Serve() }()
	return l, nil
}

// Close stops the gateway, the listener and the broker.
func (l *Local) Close() error {
	err := l.Gateway.Close()
	if serr := <-l.served; !errors.Is(serr, gateway.ErrClosed) && err == nil {
		err = serr
	}
	if lerr := l.MQTT.Close(); lerr != nil && err == nil {
		err = lerr
	}
	if berr := l.Broker.Close(); berr != nil && err == nil {
		err = berr
	}
	if err != nil {
		return fmt.Errorf("bench: close local gateway: %w", err)
	}
	return nil
}
