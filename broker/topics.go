package broker

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// sharePrefix starts a shared subscription filter: $share/{group}/{filter}.
const sharePrefix = "$share/"

// topicLimits are the bounds on topic names and filters.
type topicLimits struct {
	maxLen    int
	maxLevels int
}

// scan validates what topic names and filters have in common (non-empty,
// length and level bounds, UTF-8 without U+0000) in one pass, and reports
// whether t contains a wildcard character.
func (l topicLimits) scan(t string) (wild bool, err error) {
	if t == "" {
		return false, fmt.Errorf("%w: empty", ErrBadTopic)
	}
	if len(t) > l.maxLen {
		return false, fmt.Errorf("%w: %d bytes, limit %d", ErrBadTopic, len(t), l.maxLen)
	}
	levels, ascii := 1, true
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '/':
			levels++
		case c == '+' || c == '#':
			wild = true
		case c == 0:
			return false, fmt.Errorf("%w: contains U+0000", ErrBadTopic)
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if levels > l.maxLevels {
		return false, fmt.Errorf("%w: more than %d levels", ErrBadTopic, l.maxLevels)
	}
	if !ascii && !utf8.ValidString(t) {
		return false, fmt.Errorf("%w: not valid UTF-8", ErrBadTopic)
	}
	return wild, nil
}

// checkName validates a topic name (a PUBLISH topic): no wildcards.
func (l topicLimits) checkName(t string) error {
	wild, err := l.scan(t)
	if err != nil {
		return err
	}
	if wild {
		return fmt.Errorf("%w: wildcard in topic name %q", ErrBadTopic, t)
	}
	return nil
}

// checkFilter validates a topic filter, shared or not, and returns the
// share group ("" when not shared) and the filter proper.
func (l topicLimits) checkFilter(f string) (group, filter string, err error) {
	if _, err := l.scan(f); err != nil {
		return "", "", err
	}
	filter = f
	if strings.HasPrefix(f, sharePrefix) {
		rest := f[len(sharePrefix):]
		i := strings.IndexByte(rest, '/')
		if i <= 0 || i == len(rest)-1 {
			return "", "", fmt.Errorf("%w: shared subscription %q needs a group and a filter", ErrBadTopic, f)
		}
		group, filter = rest[:i], rest[i+1:]
		if strings.ContainsAny(group, "+#") {
			return "", "", fmt.Errorf("%w: wildcard in share group %q", ErrBadTopic, group)
		}
	}
	if err := checkWildcards(filter); err != nil {
		return "", "", err
	}
	return group, filter, nil
}

// checkWildcards checks that + and # each fill a whole level and that #
// is last.
func checkWildcards(f string) error {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '+' && c != '#' {
			continue
		}
		if i > 0 && f[i-1] != '/' {
			return fmt.Errorf("%w: %q: wildcard not alone in its level", ErrBadTopic, f)
		}
		if c == '#' && i != len(f)-1 {
			return fmt.Errorf("%w: %q: # not last", ErrBadTopic, f)
		}
		if c == '+' && i+1 < len(f) && f[i+1] != '/' {
			return fmt.Errorf("%w: %q: wildcard not alone in its level", ErrBadTopic, f)
		}
	}
	return nil
}

// nextLevel splits the first level off t. more reports whether a level
// separator followed it (so "a/" has a second, empty level).
func nextLevel(t string) (level, rest string, more bool) {
	i := strings.IndexByte(t, '/')
	if i < 0 {
		return t, "", false
	}
	return t[:i], t[i+1:], true
}

// MatchTopic reports whether topic name topic matches filter (without the
// $share prefix), following the MQTT rules, including that wildcards in the
// first level do not match topics starting with '$'. Neither is validated.
func MatchTopic(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := nextLevel(filter)
		if fl == "#" {
			return true
		}
		tl, trest, tmore := nextLevel(topic)
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore {
			return !tmore
		}
		if !tmore {
			// "a/#" also matches "a".
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}
