package bridge

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// FieldError is one problem Validate found. Field is the Go path of the
// Config field at fault: "ID", "TLS.KeyFile", "Up[0].Topic",
// "Transparent.MaxQueued", or "" for the configuration as a whole. A
// front end that fills Config from its own settings maps Field onto its
// own key names.
type FieldError struct {
	Field string
	Err   error
}

// Error returns "bridge: <Field>: <problem>".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return "bridge: " + e.Err.Error()
	}
	return "bridge: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the problem without the field name.
func (e *FieldError) Unwrap() error { return e.Err }

// ConfigError is what Validate returns: every problem found, in field
// order.
type ConfigError struct {
	Fields []*FieldError
}

// Error returns the problems joined with "; ".
func (e *ConfigError) Error() string {
	var sb strings.Builder
	sb.WriteString("bridge: ")
	for i, f := range e.Fields {
		if i > 0 {
			sb.WriteString("; ")
		}
		if f.Field != "" {
			sb.WriteString(f.Field + ": ")
		}
		sb.WriteString(f.Err.Error())
	}
	return sb.String()
}

// Unwrap returns the field errors, for errors.As and errors.Is.
func (e *ConfigError) Unwrap() []error {
	errs := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		errs[i] = f
	}
	return errs
}

// Validate checks c as given (zero fields mean their defaults) without a
// broker or a network: required fields, the URL, enums, ranges, topic
// filters and prefixes. It returns nil or a *ConfigError naming each
// field at fault. It does not read the TLS files: New does.
func (c Config) Validate() error {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	switch {
	case c.ID == "":
		bad("ID", "is required: a name for this gateway, unique in the cluster")
	case !plainName(c.ID):
		bad("ID", "%q: use printable characters without spaces, + or #", c.ID)
	}
	if c.ClientID != "" && !plainName(c.ClientID) {
		bad("ClientID", "%q: use printable characters without spaces, + or #", c.ClientID)
	}
	tlsURL, err := checkURL(c.URL)
	if err != nil {
		bad("URL", "%w", err)
	}
	switch c.ProtocolVersion {
	case 0, 4, 5:
	default:
		bad("ProtocolVersion", "%d is not 0 (MQTT 5, falling back to 3.1.1), 4 (3.1.1) or 5", c.ProtocolVersion)
	}
	if c.TLS != (TLSConfig{}) && err == nil && !tlsURL {
		bad("TLS", "is set but the URL is not mqtts://, ssl:// or tls://: the connection would not use TLS")
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		bad("TLS.KeyFile", "is required with a client certificate file")
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		bad("TLS.CertFile", "is required with a client key file")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"KeepAlive", c.KeepAlive}, {"ConnectTimeout", c.ConnectTimeout}, {"MinBackoff", c.MinBackoff},
		{"MaxBackoff", c.MaxBackoff}, {"Transparent.SessionExpiry", c.Transparent.SessionExpiry}} {
		if d.v < 0 {
			bad(d.field, "%s: must not be negative", d.v)
		}
	}
	if c.KeepAlive > 65535*time.Second {
		bad("KeepAlive", "%s exceeds 65535s", c.KeepAlive)
	}
	if c.MaxInflight < 0 || c.MaxInflight > 65535 {
		bad("MaxInflight", "%d is outside 0..65535", c.MaxInflight)
	}
	for i, r := range c.Up {
		r.check(fmt.Sprintf("Up[%d]", i), bad)
	}
	for i, r := range c.Down {
		r.check(fmt.Sprintf("Down[%d]", i), bad)
	}
	t := &c.Transparent
	if len(c.Up) == 0 && len(c.Down) == 0 && !t.Enabled {
		bad("", "nothing to bridge: give up or down rules, or enable transparent mode")
	}
	if strings.ContainsAny(t.RemotePrefix, "+#\x00") {
		bad("Transparent.RemotePrefix", "%q has a wildcard or NUL", t.RemotePrefix)
	}
	if t.MaxClients < 0 {
		bad("Transparent.MaxClients", "%d: must not be negative", t.MaxClients)
	}
	if t.MaxQueued < 0 {
		bad("Transparent.MaxQueued", "%d: must not be negative", t.MaxQueued)
	}
	if len(errs) > 0 {
		return &ConfigError{Fields: errs}
	}
	return nil
}

// check validates one rule; field is its path ("Up[0]").
func (r Rule) check(field string, bad func(field, format string, args ...any)) {
	if err := checkFilter(r.Topic); err != nil {
		bad(field+".Topic", "%q: %w", r.Topic, err)
	} else if strings.HasPrefix(r.Topic, "$share/") {
		bad(field+".Topic", "shared subscriptions are not bridged")
	}
	for _, p := range []struct{ name, v string }{{"LocalPrefix", r.LocalPrefix}, {"RemotePrefix", r.RemotePrefix}} {
		switch {
		case strings.ContainsAny(p.v, "+#\x00"):
			bad(field+"."+p.name, "%q has a wildcard or NUL", p.v)
		case strings.HasPrefix(p.v+r.Topic, "$share/"):
			bad(field+"."+p.name, "shared subscriptions are not bridged")
		}
	}
	if r.QoS > 2 {
		bad(field+".QoS", "must be 0, 1 or 2")
	}
}

// plainName reports whether s is a usable client ID or gateway name.
func plainName(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '+' || r == '#' {
			return false
		}
	}
	return s != ""
}

// checkURL checks an upstream URL and reports whether it asks for TLS.
func checkURL(raw string) (tls bool, err error) {
	if raw == "" {
		return false, errors.New("is required: the upstream broker, such as mqtt://broker.example:1883")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false, fmt.Errorf("%q is not a URL such as mqtt://broker.example:1883", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
	case "mqtts", "ssl", "tls":
		tls = true
	default:
		return false, fmt.Errorf("%q: the scheme must be mqtt, tcp, mqtts, ssl or tls", raw)
	}
	if u.User != nil {
		// The bridge would ignore them, and the URL is logged.
		return false, fmt.Errorf("%q has credentials: give them as the user name and password settings, not in the URL", u.Redacted())
	}
	if u.Hostname() == "" {
		return false, fmt.Errorf("%q has no host", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false, fmt.Errorf("%q: port %q is outside 1..65535", raw, p)
		}
	}
	if u.Path != "" && u.Path != "/" {
		return false, fmt.Errorf("%q: a broker URL has no path", raw)
	}
	return tls, nil
}
