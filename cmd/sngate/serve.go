package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/bridge"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/broker/store"
)

// serveFlagKeys binds serve's scalar flags to config keys.
var serveFlagKeys = map[string]string{
	"data-dir":       "data_dir",
	"log-level":      "log.level",
	"log-format":     "log.format",
	"metrics-listen": "metrics.listen",
}

// serveOptions are the flags of 'sngate serve' that are not config keys.
type serveOptions struct {
	config    string
	readyFile string
}

func (a *app) newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the MQTT-SN gateway and the MQTT broker",
		Long: `Run the MQTT-SN gateway and the integrated MQTT broker.

With no config file it runs the embedded defaults (configs/sngate.yaml):
MQTT-SN on UDP :1884, MQTT on TCP :1883, metrics on 127.0.0.1:9184.
Settings come from, lowest first: the defaults, the --config file (or
$SNGATE_CONFIG), SNGATE_... environment variables, and these flags. A
config mistake exits with status 2 before any port is opened.

Port 0 in an address picks a free port; the bound addresses are logged in
the "ready" line (and written to --ready-file).

Signals: SIGTERM or SIGINT stop gracefully (listeners stop accepting,
MQTT-SN clients get DISCONNECT, the bridge disconnects, the broker
closes, the store is flushed and closed). SIGHUP re-reads the
config file: the password file and the ACL apply at once, and no session
is dropped. The gateway's admission settings apply too: predefined
topics, sn.clients, sn.restrict_clients, QoS -1 rights, forwarders and
DTLS identity bindings. A file with mistakes is logged and changes
nothing. Listeners, links, PSK keys and limits need a restart; a warning
names what changed.

Persistence (on by default): --data-dir is created at start and holds the
store (sngate.db): persistent sessions and their subscriptions, QoS 1/2
messages queued or in flight (sleeping MQTT-SN clients' queues included),
retained messages and MQTT-SN topic-ID registrations. A store that is
corrupt, unreadable or in use by another sngate stops serve with exit
status 1 and a message saying how to go on. --no-persistence (or
persistence: false) keeps everything in memory.

With a bridge section (bridge.url set), serve starts the bridge before
the gateway serves; it connects upstream in the background and retries
until it gets through.`,
		Args: cobra.NoArgs,
		RunE: a.command(func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), o, cmd.Flags())
		}),
	}
	f := cmd.Flags()
	def := defaultConfig()
	f.StringVar(&o.config, "config", "", "YAML config file (default $SNGATE_CONFIG, else the embedded defaults)")
	f.String("sn-listen", def.SN.UDP[0].Listen, `MQTT-SN UDP address: replaces the first sn.udp listen address ("" = no UDP)`)
	f.String("mqtt-listen", def.MQTT.Listeners[0].Addr, `MQTT TCP address: replaces the first tcp listener's address ("" = none)`)
	f.String("data-dir", def.DataDir, "directory for persistent state (data_dir)")
	f.Bool("no-persistence", false, "keep all state in memory: no store in --data-dir (persistence: false)")
	f.String("log-level", def.Log.Level, "log level: debug, info, warn, error (log.level)")
	f.String("log-format", def.Log.Format, "log format: text or json (log.format)")
	f.String("metrics-listen", def.Metrics.Listen, `address of /metrics and /healthz; "" disables (metrics.listen)`)
	f.StringVar(&o.readyFile, "ready-file", "", "write the bound addresses as JSON to this file once serving")
	return cmd
}

// loadServeConfig builds serve's effective configuration.
func (a *app) loadServeConfig(file string, flags *pflag.FlagSet) (Config, error) {
	cfg, err := loadConfig(loadOptions{File: file, Flags: flags, FlagKeys: serveFlagKeys, Environ: a.environ()})
	if err != nil {
		return cfg, err
	}
	if f := flags.Lookup("sn-listen"); f != nil && f.Changed {
		switch {
		case f.Value.String() == "":
			cfg.SN.UDP = nil
		case len(cfg.SN.UDP) > 0:
			cfg.SN.UDP[0].Listen = f.Value.String()
		default:
			cfg.SN.UDP = []UDPLink{{Listen: f.Value.String()}}
		}
	}
	if f := flags.Lookup("mqtt-listen"); f != nil && f.Changed {
		cfg.MQTT.Listeners = replaceTCP(cfg.MQTT.Listeners, f.Value.String())
	}
	if f := flags.Lookup("no-persistence"); f != nil && f.Changed && f.Value.String() == "true" {
		cfg.Persistence = false
	}
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return cfg, usagef("flags: %w", err)
	}
	return cfg, nil
}

// replaceTCP sets the address of the first tcp listener (adding one when
// there is none); "" removes it.
func replaceTCP(ls []MQTTListener, addr string) []MQTTListener {
	for i, l := range ls {
		if l.Type == "tcp" {
			if addr == "" {
				return append(ls[:i:i], ls[i+1:]...)
			}
			ls[i].Addr = addr
			return ls
		}
	}
	if addr == "" {
		return ls
	}
	return append([]MQTTListener{{Type: "tcp", Addr: addr}}, ls...)
}

// configFile returns the config file to use: --config, else $SNGATE_CONFIG.
func (a *app) configFile(flag string) string {
	if flag != "" {
		return flag
	}
	return a.getenv(envConfigFile)
}

// server is a running sngate: store, broker, bridge, listeners, gateway,
// metrics.
type server struct {
	cfg     Config
	file    string
	log     *slog.Logger
	store   *store.Store // nil without persistence
	broker  *broker.Server
	bridge  *bridge.Bridge // nil without a bridge
	mqtt    *listeners.Group
	sn      *snGateway // nil without MQTT-SN links
	metrics *metricsServer
	comps   *components
}

// readyInfo is what the ready line and --ready-file report.
type readyInfo struct {
	MQTT    []string `json:"mqtt"`
	SNUDP   []string `json:"sn_udp"`
	SNDTLS  []string `json:"sn_dtls"`
	Serial  []string `json:"sn_serial"`
	Semtech []string `json:"sn_semtech"`
	Metrics string   `json:"metrics"`
	DataDir string   `json:"data_dir"`
	// Store is the store file, "" without persistence.
	Store string `json:"store"`
	// Bridge is the upstream URL, "" without a bridge.
	Bridge string `json:"bridge"`
	PID    int    `json:"pid"`
}

func (a *app) serve(ctx context.Context, o serveOptions, flags *pflag.FlagSet) error {
	file := a.configFile(o.config)
	cfg, err := a.loadServeConfig(file, flags)
	if err != nil {
		return err
	}
	log, err := newLogger(a.stderr, cfg.Log)
	if err != nil {
		return usageError{err}
	}
	// Everything that can be checked without opening a port is checked
	// here, so that a mistake exits 2 with nothing started.
	if _, _, err := loadAuth(cfg.MQTT); err != nil {
		return usagef("config %s: %w", orDefaults(file), err)
	}
	dtlsLinks, err := cfg.dtlsConfigs(log)
	if err != nil {
		return usagef("config %s: %w", orDefaults(file), err)
	}
	gwCfg, err := cfg.gatewayConfig(log)
	if err != nil {
		return usagef("config %s: %w", orDefaults(file), err)
	}

	s := &server{cfg: cfg, file: file, log: log}
	defer s.shutdown()
	if cfg.Persistence {
		st, err := openStore(cfg.DataDir, log.With("component", "store"))
		if err != nil {
			return err
		}
		s.store = st
	}
	if err := s.start(gwCfg, dtlsLinks); err != nil {
		return err
	}

	info := s.ready()
	s.logUDPBuffers()
	// The ready file is written before the ready line, so whoever waits
	// on either finds both.
	if o.readyFile != "" {
		if err := writeReadyFile(o.readyFile, info); err != nil {
			return err
		}
	}
	log.Info("ready", "mqtt", info.MQTT, "sn_udp", info.SNUDP, "sn_dtls", info.SNDTLS,
		"sn_serial", info.Serial, "sn_semtech", info.Semtech, "metrics", info.Metrics, "data_dir", info.DataDir,
		"store", info.Store, "bridge", info.Bridge, "version", readBuildInfo().Version, "config", orDefaults(file))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "context done")
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.reload(a, flags)
				continue
			}
			log.Info("stopping", "signal", sig.String())
			return nil
		case err := <-s.mqtt.Errors():
			return fmt.Errorf("mqtt listener: %w", err)
		case err := <-s.snErrors():
			return fmt.Errorf("gateway: %w", err)
		}
	}
}

func orDefaults(file string) string {
	if file == "" {
		return "(embedded defaults)"
	}
	return file
}

// start creates the broker, listeners, links, gateway and metrics.
func (s *server) start(gwCfg gatewayParams, dtlsLinks []dtlsLink) error {
	cfg := &s.cfg
	srv, err := broker.New(cfg.brokerConfig(), s.brokerOptions()...)
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			return err // "broker: load store: store FILE: ...; the way out"
		}
		return fmt.Errorf("broker: %w", err)
	}
	s.broker = srv
	if len(cfg.MQTT.ACL) > 0 {
		users, acl, err := loadAuth(cfg.MQTT)
		if err != nil {
			return err
		}
		srv.SetAuth(users, acl)
	}
	s.comps = &components{broker: srv, store: s.store}
	// The bridge starts before the listeners and the gateway: transparent
	// mode must see every MQTT-SN CONNECT.
	if err := s.startBridge(); err != nil {
		return err
	}

	group, err := listeners.Start(srv, s.log.With("component", "mqtt"), cfg.listenerConfigs()...)
	if err != nil {
		return fmt.Errorf("mqtt listeners: %w", err)
	}
	s.mqtt = group
	s.comps.mqtt = group.Listeners()

	s.sn, err = startGateway(s, gwCfg, dtlsLinks)
	if err != nil {
		return err
	}
	s.registerSys()

	if cfg.Metrics.Listen != "" {
		ms, err := startMetrics(cfg.Metrics.Listen, newRegistry(s.comps), s.log.With("component", "metrics"))
		if err != nil {
			return err
		}
		s.metrics = ms
	}
	return nil
}

// ready collects the bound addresses.
func (s *server) ready() readyInfo {
	info := readyInfo{MQTT: []string{}, SNUDP: []string{}, SNDTLS: []string{}, Serial: []string{}, Semtech: []string{},
		DataDir: s.cfg.DataDir, Bridge: s.cfg.Bridge.URL, PID: os.Getpid()}
	if s.store != nil {
		info.Store = s.store.Path()
	}
	for _, l := range s.mqtt.Listeners() {
		if a := l.Addr(); a != nil {
			info.MQTT = append(info.MQTT, l.Config().Kind+"://"+a.String())
		}
	}
	for _, l := range s.comps.udp {
		info.SNUDP = append(info.SNUDP, l.LocalAddr().String())
	}
	for _, l := range s.comps.dtls {
		info.SNDTLS = append(info.SNDTLS, l.LocalAddr().String())
	}
	for _, l := range s.comps.semtech {
		info.Semtech = append(info.Semtech, l.LocalAddr().String())
	}
	for _, l := range s.cfg.SN.Serial {
		info.Serial = append(info.Serial, l.Kind+":"+l.Device)
	}
	if s.metrics != nil {
		info.Metrics = s.metrics.Addr()
	}
	return info
}

// writeReadyFile writes info atomically (temp file and rename).
func writeReadyFile(path string, info readyInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("ready file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// reload re-reads the config file and applies what can change without a
// restart: the broker's users and ACL, and the gateway's admission
// settings. A broken file is logged and changes nothing.
func (s *server) reload(a *app, flags *pflag.FlagSet) {
	s.log.Info("SIGHUP: reloading", "config", orDefaults(s.file))
	cfg, err := a.loadServeConfig(s.file, flags)
	if err != nil {
		s.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	users, acl, err := loadAuth(cfg.MQTT)
	if err != nil {
		s.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if err := s.reloadGateway(cfg); err != nil {
		s.log.Warn("gateway settings not reloaded", "err", err)
	}
	s.broker.SetAuth(users, acl)
	for _, w := range restartOnly(s.cfg, cfg) {
		s.log.Warn("changed setting needs a restart", "key", w)
	}
	s.cfg.MQTT.PasswordFile, s.cfg.MQTT.ACLFile, s.cfg.MQTT.ACL = cfg.MQTT.PasswordFile, cfg.MQTT.ACLFile, cfg.MQTT.ACL
	nUsers := 0
	if users != nil {
		nUsers = users.Len()
	}
	s.log.Info("reloaded", "password_file", cfg.MQTT.PasswordFile, "acl_file", cfg.MQTT.ACLFile,
		"acl_rules", len(cfg.MQTT.ACL), "users", nUsers)
}

// restartOnly lists top-level settings that differ but are not reloaded.
func restartOnly(old, cur Config) []string {
	var keys []string
	a, _ := marshalConfig(old)
	b, _ := marshalConfig(cur)
	if string(a) == string(b) {
		return nil
	}
	if old.MQTT.AllowAnonymous != cur.MQTT.AllowAnonymous {
		keys = append(keys, "mqtt.allow_anonymous")
	}
	if fmt.Sprint(old.MQTT.Listeners) != fmt.Sprint(cur.MQTT.Listeners) {
		keys = append(keys, "mqtt.listeners")
	}
	if old.MQTT.Limits != cur.MQTT.Limits {
		keys = append(keys, "mqtt.limits")
	}
	if fmt.Sprint(old.SN.UDP, old.SN.DTLS, old.SN.Serial) != fmt.Sprint(cur.SN.UDP, cur.SN.DTLS, cur.SN.Serial) {
		keys = append(keys, "sn links (udp, dtls, serial)")
	}
	if old.SN.Limits != cur.SN.Limits || old.SN.Timers != cur.SN.Timers {
		keys = append(keys, "sn.limits / sn.timers")
	}
	if old.Log != cur.Log || old.Metrics != cur.Metrics || old.DataDir != cur.DataDir || old.Persistence != cur.Persistence {
		keys = append(keys, "log / metrics / data_dir / persistence")
	}
	if fmt.Sprint(old.Bridge) != fmt.Sprint(cur.Bridge) {
		keys = append(keys, "bridge")
	}
	return keys
}

// shutdown stops everything in order: no new connections, MQTT-SN
// clients told DISCONNECT, bridge, broker, store, metrics last.
func (s *server) shutdown() {
	if s.metrics != nil {
		s.metrics.healthy.Store(false)
	}
	if s.mqtt != nil {
		if err := s.mqtt.Close(); err != nil {
			s.log.Warn("closing MQTT listeners", "err", err)
		}
	}
	if s.sn != nil {
		if err := s.sn.close(); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("closing gateway", "err", err)
		}
	}
	if s.bridge != nil {
		if err := s.bridge.Close(); err != nil {
			s.log.Warn("closing bridge", "err", err)
		}
	}
	if s.broker != nil {
		if err := s.broker.Close(); err != nil {
			s.log.Warn("closing broker", "err", err)
		}
	}
	if s.store != nil { // after the broker: it commits what the broker staged
		if err := s.store.Close(); err != nil {
			s.log.Error("closing store", "err", err)
		}
	}
	if s.metrics != nil {
		_ = s.metrics.Close()
	}
	if s.broker != nil {
		s.log.Info("stopped")
	}
}
