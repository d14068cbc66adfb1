package main

// The schema walker: it checks a YAML document against the Config struct
// (keys known, values of the right type) before viper sees it, so that
// every mistake is reported with its key, file and line. Viper's own
// decoding runs afterwards with unknown keys as errors, as a backstop.

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

var durationType = reflect.TypeOf(Duration(0))

// configError is a configuration mistake at one key, from one source.
type configError struct {
	Source string // "config FILE", "environment", "flag"
	Line   int    // 0 when unknown
	Key    string // dotted key, with [i] for list items; "" for the document
	Msg    string
}

// Error renders "SOURCE[:LINE]: KEY: MESSAGE".
func (e *configError) Error() string {
	where := e.Source
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Key == "" {
		return where + ": " + e.Msg
	}
	return where + ": " + e.Key + ": " + e.Msg
}

// fieldsOf returns the mapstructure keys of a struct type and their fields.
func fieldsOf(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = f
	}
	return m
}

// checkNode validates node against type t at key. It returns every error
// found, in document order.
func checkNode(source, key string, node *yaml.Node, t reflect.Type) []*configError {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	fail := func(format string, args ...any) []*configError {
		return []*configError{{Source: source, Line: node.Line, Key: key, Msg: fmt.Sprintf(format, args...)}}
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		if t.Kind() == reflect.Slice {
			return fail("has no value (write [] for an empty list)")
		}
		return fail("has no value")
	}
	switch {
	case t == durationType:
		if node.Kind != yaml.ScalarNode {
			return fail("want a duration such as 30s, got %s", kindName(node))
		}
		if node.Tag == "!!int" && node.Value == "0" {
			return nil
		}
		if node.Tag != "!!str" {
			return fail("want a duration with a unit such as 30s or 15m, got %s", kindName(node))
		}
		if _, err := time.ParseDuration(node.Value); err != nil {
			return fail("want a duration such as 30s or 15m, got %q", node.Value)
		}
		return nil
	case t.Kind() == reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return fail("want a mapping of keys, got %s", kindName(node))
		}
		return checkMapping(source, key, node, t)
	case t.Kind() == reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return fail("want a list, got %s", kindName(node))
		}
		var errs []*configError
		for i, item := range node.Content {
			errs = append(errs, checkNode(source, fmt.Sprintf("%s[%d]", key, i), item, t.Elem())...)
		}
		return errs
	}
	if node.Kind != yaml.ScalarNode {
		return fail("want %s, got %s", typeName(t), kindName(node))
	}
	switch t.Kind() {
	case reflect.String:
		if node.Tag != "!!str" {
			return fail("want a string, got %s (quote it)", kindName(node))
		}
	case reflect.Bool:
		if node.Tag != "!!bool" {
			return fail("want true or false, got %s", kindName(node))
		}
	case reflect.Int, reflect.Int64:
		if node.Tag != "!!int" {
			return fail("want an integer, got %s", kindName(node))
		}
		var v int64
		if err := node.Decode(&v); err != nil {
			return fail("integer %s out of range", node.Value)
		}
		if t.Kind() == reflect.Int && (v > math.MaxInt || v < math.MinInt) {
			return fail("integer %s out of range", node.Value)
		}
	case reflect.Float64:
		if node.Tag != "!!int" && node.Tag != "!!float" {
			return fail("want a number, got %s", kindName(node))
		}
	default:
		return fail("unsupported field type %s", t)
	}
	return nil
}

func checkMapping(source, key string, node *yaml.Node, t reflect.Type) []*configError {
	fields := fieldsOf(t)
	seen := map[string]bool{}
	var errs []*configError
	for i := 0; i+1 < len(node.Content); i += 2 {
		kn, vn := node.Content[i], node.Content[i+1]
		name := kn.Value
		full := joinKey(key, name)
		if kn.Kind != yaml.ScalarNode {
			errs = append(errs, &configError{Source: source, Line: kn.Line, Key: key, Msg: "a key must be a plain name"})
			continue
		}
		if name == "<<" {
			errs = append(errs, &configError{Source: source, Line: kn.Line, Key: key, Msg: "YAML merge keys (<<) are not supported"})
			continue
		}
		if seen[name] {
			errs = append(errs, &configError{Source: source, Line: kn.Line, Key: full, Msg: "appears twice"})
			continue
		}
		seen[name] = true
		f, ok := fields[name]
		if !ok {
			msg := "unknown key"
			if s := suggest(name, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", joinKey(key, s))
			}
			errs = append(errs, &configError{Source: source, Line: kn.Line, Key: full, Msg: msg})
			continue
		}
		errs = append(errs, checkNode(source, full, vn, f.Type)...)
	}
	return errs
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// suggest returns the known key closest to name, if it is close.
func suggest(name string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lower := strings.ToLower(strings.ReplaceAll(name, "-", "_"))
	for _, k := range keys {
		if d := editDistance(lower, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return n.Value
	}
	return "an unsupported YAML node"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return t.String()
}

// scalarKeys lists the keys that the environment can set: scalar fields
// reachable without going through a list.
func scalarKeys(prefix string, t reflect.Type, out map[string]reflect.Type) {
	for name, f := range fieldsOf(t) {
		key := joinKey(prefix, name)
		switch {
		case f.Type == durationType:
			out[key] = f.Type
		case f.Type.Kind() == reflect.Struct:
			scalarKeys(key, f.Type, out)
		case f.Type.Kind() == reflect.Slice:
			// Lists come from the file only.
		default:
			out[key] = f.Type
		}
	}
}

// parseScalar converts an environment string to the value type t wants.
// Durations stay strings (the decode hook parses them).
func parseScalar(s string, t reflect.Type) (any, error) {
	if t == durationType {
		if _, err := time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("want a duration such as 30s, got %q", s)
		}
		return s, nil
	}
	switch t.Kind() {
	case reflect.String:
		return s, nil
	case reflect.Bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", s)
		}
		return v, nil
	case reflect.Int:
		v, err := strconv.ParseInt(s, 0, strconv.IntSize)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %q", s)
		}
		return int(v), nil
	case reflect.Int64:
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %q", s)
		}
		return v, nil
	case reflect.Float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("want a number, got %q", s)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

// toGeneric converts a config value to maps, lists and scalars keyed by
// the mapstructure tags (durations as strings), the form viper holds.
func toGeneric(v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for name, f := range fieldsOf(v.Type()) {
			m[name] = toGeneric(v.FieldByIndex(f.Index))
		}
		return m
	case reflect.Slice:
		l := make([]any, v.Len())
		for i := range l {
			l[i] = toGeneric(v.Index(i))
		}
		return l
	}
	return v.Interface()
}

// flatten turns nested maps into dotted keys; lists stay whole.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := joinKey(prefix, k)
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}
