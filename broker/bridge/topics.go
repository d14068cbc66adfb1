package bridge

import (
	"errors"
	"strings"

	"github.com/sngate/sngate/broker"
)

// checkFilter validates an MQTT topic filter: non-empty, '#' only as the
// whole last level, '+' only as a whole level.
func checkFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	if strings.IndexByte(f, 0) >= 0 {
		return errors.New("topic filter contains U+0000")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case strings.Contains(l, "#") && (l != "#" || i != len(levels)-1):
			return errors.New("'#' must be the whole last level of a filter")
		case strings.Contains(l, "+") && l != "+":
			return errors.New("'+' must be a whole level of a filter")
		}
	}
	return nil
}

// match reports whether topic name t matches filter f (MQTT rules:
// wildcards at the first level do not match topics starting with '$').
func match(f, t string) bool {
	if t != "" && t[0] == '$' && f != "" && (f[0] == '+' || f[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(f, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(t, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" matches "a" too.
			return fmore == tmore || (fmore && frest == "#")
		}
		f, t = frest, trest
	}
}

// rules is a compiled rule list for one direction.
type rules []Rule

// mapUp returns the remote topic of local topic t and the rule that
// matched, or ok false.
func (rs rules) mapUp(t string) (remote string, r *Rule, ok bool) {
	for i := range rs {
		r := &rs[i]
		rest, has := strings.CutPrefix(t, r.LocalPrefix)
		if has && match(r.Topic, rest) {
			return r.RemotePrefix + rest, r, true
		}
	}
	return "", nil, false
}

// mapDown returns the local topic of remote topic t and the rule that
// matched, or ok false.
func (rs rules) mapDown(t string) (local string, r *Rule, ok bool) {
	for i := range rs {
		r := &rs[i]
		rest, has := strings.CutPrefix(t, r.RemotePrefix)
		if has && match(r.Topic, rest) {
			return r.LocalPrefix + rest, r, true
		}
	}
	return "", nil, false
}

// origin returns the value of the origin user property of props ("" for
// none).
func origin(props *broker.Properties) string {
	if props == nil {
		return ""
	}
	for _, u := range props.User {
		if u.Key == OriginProperty {
			return u.Value
		}
	}
	return ""
}

// withOrigin returns the user properties of props with the origin mark
// set to id, unless one is already there (a message that entered the
// cluster elsewhere keeps its first origin).
func withOrigin(props *broker.Properties, id string) []broker.UserProperty {
	var user []broker.UserProperty
	if props != nil {
		user = props.User
		if origin(props) != "" {
			return user
		}
	}
	out := make([]broker.UserProperty, 0, len(user)+1)
	out = append(out, user...)
	return append(out, broker.UserProperty{Key: OriginProperty, Value: id})
}
