package broker

import (
	"strings"
	"testing"
)

func TestTopicNameValidation(t *testing.T) {
	l := topicLimits{maxLen: 100, maxLevels: 5}
	good := []string{"a", "a/b", "/", "a//b", "$SYS/x", "ünï/cödé", " "}
	bad := []string{"", "a/+", "#", "a/#", "a\x00b", string([]byte{0xff}), strings.Repeat("x", 101), "a/b/c/d/e/f"}
	for _, s := range good {
		if err := l.checkName(s); err != nil {
			t.Errorf("checkName(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if err := l.checkName(s); err == nil {
			t.Errorf("checkName(%q) accepted", s)
		}
	}
}

func TestTopicFilterValidation(t *testing.T) {
	l := topicLimits{maxLen: 100, maxLevels: 10}
	cases := []struct {
		f, group, filter string
		ok               bool
	}{
		{"a/b", "", "a/b", true},
		{"#", "", "#", true},
		{"+", "", "+", true},
		{"a/+/c/#", "", "a/+/c/#", true},
		{"+/+", "", "+/+", true},
		{"/#", "", "/#", true},
		{"$share/g/a/#", "g", "a/#", true},
		{"$share/g/#", "g", "#", true},
		{"$share/g/", "", "", false},
		{"$share//a", "", "", false},
		{"$share/g", "", "", false},
		{"$share/g+/a", "", "", false},
		{"a#", "", "", false},
		{"a/#/b", "", "", false},
		{"a+/b", "", "", false},
		{"a/+b", "", "", false},
		{"##", "", "", false},
		{"", "", "", false},
		{"a\x00", "", "", false},
	}
	for _, c := range cases {
		g, f, err := l.checkFilter(c.f)
		if (err == nil) != c.ok || g != c.group || f != c.filter {
			t.Errorf("checkFilter(%q) = %q, %q, %v", c.f, g, f, err)
		}
	}
}

func TestMatchTopic(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"+/+", "/", true},
		{"/+", "/x", true},
		{"+", "", true},
		{"a/b/c", "a/b", false},
		{"a/+/#", "a/b", true},
	}
	for _, c := range cases {
		if got := MatchTopic(c.filter, c.topic); got != c.want {
			t.Errorf("MatchTopic(%q, %q) = %v", c.filter, c.topic, got)
		}
	}
}
