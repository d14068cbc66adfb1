package main

// Configuration loading: the one place that uses viper. Layers, lowest
// first: embedded defaults, the YAML file, SNGATE_... environment
// variables, command-line flags.

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	yaml "go.yaml.in/yaml/v3"
)

// envPrefix starts every environment variable sngate reads.
const envPrefix = "SNGATE_"

// envConfigFile names the config file when --config is not given.
const envConfigFile = envPrefix + "CONFIG"

// maxConfigSize bounds a config file.
const maxConfigSize = 4 << 20

// envName returns the environment variable for a dotted key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// loadOptions say where a configuration comes from.
type loadOptions struct {
	// File is the YAML file; "" for none.
	File string
	// Flags are the command's flags; flagKeys maps flag names to config
	// keys (scalars). Only flags the user set override.
	Flags    *pflag.FlagSet
	FlagKeys map[string]string
	// Environ lists KEY=VALUE environment strings.
	Environ []string
}

// loadConfig builds the effective configuration. Every error it returns
// is a usage error naming the key and where the value came from.
func loadConfig(o loadOptions) (Config, error) {
	var cfg Config
	v := viper.New()
	v.SetConfigType("yaml")

	defaults := map[string]any{}
	flatten("", toGeneric(reflect.ValueOf(defaultConfig())).(map[string]any), defaults)
	for k, val := range defaults {
		v.SetDefault(k, val)
	}

	source := "defaults"
	if o.File != "" {
		source = "config " + o.File
		data, err := readConfigFile(o.File)
		if err != nil {
			return cfg, usageError{err}
		}
		if err := checkYAML(source, data); err != nil {
			return cfg, usageError{err}
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return cfg, usagef("%s: %w", source, err)
		}
	}

	env, err := envSettings(o.Environ)
	if err != nil {
		return cfg, usageError{err}
	}
	if len(env) > 0 {
		if err := v.MergeConfigMap(env); err != nil {
			return cfg, usagef("environment: %w", err)
		}
	}

	if o.Flags != nil {
		for flag, key := range o.FlagKeys {
			f := o.Flags.Lookup(flag)
			if f == nil {
				return cfg, fmt.Errorf("internal: no flag --%s", flag)
			}
			if err := v.BindPFlag(key, f); err != nil {
				return cfg, fmt.Errorf("bind flag --%s: %w", flag, err)
			}
		}
	}

	err = v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = false
		dc.DecodeHook = durationHook
	})
	if err != nil {
		return cfg, usagef("%s: %s", source, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return cfg, usagef("%s: %w", describeSources(o.File, env), err)
	}
	return cfg, nil
}

// describeSources names where a validated value may come from.
func describeSources(file string, env map[string]any) string {
	s := "config"
	if file != "" {
		s += " " + file
	} else {
		s += " (embedded defaults)"
	}
	if len(env) > 0 {
		s += " with SNGATE_ environment"
	}
	return s
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if n > maxConfigSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, maxConfigSize)
	}
	return buf.Bytes(), nil
}

// checkYAML parses data and checks it against the schema.
func checkYAML(source string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %s", source, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file: all defaults
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	errs := checkNode(source, "", root, reflect.TypeOf(Config{}))
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(errs))
	for i, e := range errs {
		if i == 5 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(errs)-5))
			break
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// envSettings reads SNGATE_... variables into a nested map of typed
// values. An unknown SNGATE_ variable, or a value of the wrong type, is
// an error.
func envSettings(environ []string) (map[string]any, error) {
	keys := map[string]reflect.Type{}
	scalarKeys("", reflect.TypeOf(Config{}), keys)
	byEnv := make(map[string]string, len(keys))
	for k := range keys {
		byEnv[envName(k)] = k
	}
	out := map[string]any{}
	var errs []string
	sort.Strings(environ)
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || name == envConfigFile {
			continue
		}
		key, known := byEnv[name]
		if !known {
			errs = append(errs, fmt.Sprintf("environment %s: unknown variable (lists such as sn.udp come from the config file only)", name))
			continue
		}
		typed, err := parseScalar(val, keys[key])
		if err != nil {
			errs = append(errs, fmt.Sprintf("environment %s (%s): %v", name, key, err))
			continue
		}
		setPath(out, strings.Split(key, "."), typed)
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return out, nil
}

func setPath(m map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[path[len(path)-1]] = v
}

// durationHook decodes Duration fields from strings such as "30s".
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		v, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("want a duration such as 30s, got %q", d)
		}
		return Duration(v), nil
	case int:
		if d == 0 {
			return Duration(0), nil
		}
	case Duration:
		return d, nil
	}
	return nil, fmt.Errorf("want a duration such as 30s, got %v", data)
}

// decodeHexKey decodes a PSK written in hex (spaces and colons allowed
// between bytes, an optional 0x prefix).
func decodeHexKey(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	s = strings.NewReplacer(" ", "", ":", "").Replace(s)
	if s == "" {
		return nil, errors.New("empty key")
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hexadecimal: %w", err)
	}
	return k, nil
}

// marshalConfig renders the effective configuration as YAML.
func marshalConfig(cfg Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return buf.Bytes(), nil
}
