package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Access is what a rule allows.
type Access uint8

// Access rights of ACL rules.
const (
	Read      Access = 1 << iota // subscribe
	Write                        // publish
	ReadWrite = Read | Write
)

// Rule allows Access on the topics matching Filter, a topic filter in
// which "%c" stands for the client ID and "%u" for the user name.
type Rule struct {
	Access Access
	Filter string
}

// ACL is a set of access rules. Everything not allowed by a rule is
// denied. It is immutable once built and safe for concurrent use.
//
// File format, one directive a line ('#' starts a comment line):
//
//	topic [read|write|readwrite] FILTER   a rule for the current section
//	user NAME                             start the section of user NAME
//	client ID                             start the section of client ID
//	pattern [read|write|readwrite] FILTER a rule for every client
//
// The access defaults to readwrite. Rules before the first user or client
// line apply to anonymous clients (no user name). A client gets the rules
// of its user name's section, of its client ID's section and the patterns.
// "%c" and "%u" are substituted in every rule; a rule whose substitution
// would insert '/', '+' or '#' (or an empty user name) matches nothing.
//
// Publishing needs a Write rule whose filter matches the topic.
// Subscribing needs a Read rule whose filter covers the whole subscribed
// filter: "sensors/#" covers "sensors/+/temp", but "sensors/+" does not
// cover "sensors/#". Wildcards in a rule's first level do not match topics
// starting with '$'.
type ACL struct {
	anon     []Rule
	users    map[string][]Rule
	clients  map[string][]Rule
	patterns []Rule
}

// ErrBadACL reports a malformed ACL file.
var ErrBadACL = errors.New("auth: bad ACL file")

// ParseACL reads an ACL file.
func ParseACL(r io.Reader) (*ACL, error) {
	a := &ACL{users: make(map[string][]Rule), clients: make(map[string][]Rule)}
	var (
		section map[string][]Rule // nil: the anonymous section
		name    string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		kw, rest, _ := strings.Cut(text, " ")
		rest = strings.TrimSpace(rest)
		switch kw {
		case "user", "client":
			if rest == "" {
				return nil, fmt.Errorf("%w: line %d: %s needs a name", ErrBadACL, line, kw)
			}
			section, name = a.users, rest
			if kw == "client" {
				section = a.clients
			}
		case "topic", "pattern":
			rule, err := parseRule(rest)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadACL, line, err)
			}
			switch {
			case kw == "pattern":
				a.patterns = append(a.patterns, rule)
			case section == nil:
				a.anon = append(a.anon, rule)
			default:
				section[name] = append(section[name], rule)
			}
		default:
			return nil, fmt.Errorf("%w: line %d: unknown directive %q", ErrBadACL, line, kw)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read ACL: %w", err)
	}
	return a, nil
}

// LoadACLFile reads an ACL file.
func LoadACLFile(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	a, err := ParseACL(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

func parseRule(s string) (Rule, error) {
	access := ReadWrite
	word, rest, _ := strings.Cut(s, " ")
	switch word {
	case "read":
		access, s = Read, strings.TrimSpace(rest)
	case "write":
		access, s = Write, strings.TrimSpace(rest)
	case "readwrite":
		access, s = ReadWrite, strings.TrimSpace(rest)
	}
	if s == "" {
		return Rule{}, errors.New("missing topic filter")
	}
	if err := checkFilter(s); err != nil {
		return Rule{}, err
	}
	return Rule{Access: access, Filter: s}, nil
}

// checkFilter validates the wildcards of a rule filter.
func checkFilter(f string) error {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '+' && c != '#' {
			continue
		}
		if (i > 0 && f[i-1] != '/') || (c == '+' && i+1 < len(f) && f[i+1] != '/') || (c == '#' && i != len(f)-1) {
			return fmt.Errorf("invalid topic filter %q", f)
		}
	}
	return nil
}

// CanPublish reports whether the client may publish to topic.
func (a *ACL) CanPublish(clientID, username, topic string) bool {
	return a.allowed(clientID, username, topic, Write, matches)
}

// CanSubscribe reports whether the client may subscribe to filter (a
// filter proper, without a $share prefix).
func (a *ACL) CanSubscribe(clientID, username, filter string) bool {
	return a.allowed(clientID, username, filter, Read, covers)
}

func (a *ACL) allowed(c, u, topic string, need Access, test func(rule, topic string, s subst) bool) bool {
	sub := subst{c: c, u: u}
	check := func(rules []Rule) bool {
		for _, r := range rules {
			if r.Access&need != 0 && test(r.Filter, topic, sub) {
				return true
			}
		}
		return false
	}
	if u == "" {
		if check(a.anon) {
			return true
		}
	} else if check(a.users[u]) {
		return true
	}
	return check(a.clients[c]) || check(a.patterns)
}

// subst holds the values of %c and %u.
type subst struct{ c, u string }

func unsafeValue(v string) bool { return v == "" || strings.ContainsAny(v, "/+#") }

// levelEq reports whether rule level pat, with %c and %u substituted,
// equals level, without building the substituted string.
func (s subst) levelEq(pat, level string) bool {
	for pat != "" {
		i := strings.IndexByte(pat, '%')
		if i < 0 || i+1 >= len(pat) || (pat[i+1] != 'c' && pat[i+1] != 'u') {
			if i < 0 || i+1 >= len(pat) {
				return pat == level
			}
			// A '%' that is not a substitution: compare it literally.
			if !strings.HasPrefix(level, pat[:i+1]) {
				return false
			}
			pat, level = pat[i+1:], level[i+1:]
			continue
		}
		if !strings.HasPrefix(level, pat[:i]) {
			return false
		}
		level = level[i:]
		v := s.c
		if pat[i+1] == 'u' {
			v = s.u
		}
		if unsafeValue(v) || !strings.HasPrefix(level, v) {
			return false
		}
		pat, level = pat[i+2:], level[len(v):]
	}
	return level == ""
}

func cut(t string) (level, rest string, more bool) {
	i := strings.IndexByte(t, '/')
	if i < 0 {
		return t, "", false
	}
	return t[:i], t[i+1:], true
}

// matches reports whether rule filter f matches topic name t.
func matches(f, t string, s subst) bool {
	first := true
	for {
		fl, frest, fmore := cut(f)
		dollar := first && strings.HasPrefix(t, "$")
		if fl == "#" {
			return !dollar
		}
		tl, trest, tmore := cut(t)
		if fl == "+" {
			if dollar {
				return false
			}
		} else if !s.levelEq(fl, tl) {
			return false
		}
		if !fmore {
			return !tmore
		}
		if !tmore {
			return frest == "#"
		}
		f, t, first = frest, trest, false
	}
}

// covers reports whether rule filter f matches every topic that
// subscription filter q matches.
func covers(f, q string, s subst) bool {
	first := true
	for {
		fl, frest, fmore := cut(f)
		dollar := first && strings.HasPrefix(q, "$")
		if fl == "#" {
			return !dollar
		}
		ql, qrest, qmore := cut(q)
		switch {
		case ql == "#":
			return false
		case fl == "+":
			if dollar {
				return false
			}
		case ql == "+" || !s.levelEq(fl, ql):
			return false
		}
		if !fmore {
			return !qmore
		}
		if !qmore {
			return frest == "#"
		}
		f, q, first = frest, qrest, false
	}
}
