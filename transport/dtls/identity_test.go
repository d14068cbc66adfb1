package dtls

import "testing"

func TestBindings(t *testing.T) {
	b, err := NewBindings([]Binding{
		{Identity: "sensor-1", ClientIDs: []string{"sensor-1", "sensor-1-backup"}},
		{Identity: "fleet-a", ClientIDs: []string{"a-*"}},
		{Identity: "ops", ClientIDs: []string{"*"}},
		{Identity: "*", ClientIDs: []string{"{identity}"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		identity, clientID string
		want               bool
	}{
		{"sensor-1", "sensor-1", true},
		{"sensor-1", "sensor-1-backup", true},
		{"sensor-1", "sensor-2", false},
		{"fleet-a", "a-17", true},
		{"fleet-a", "a-", true},
		{"fleet-a", "b-17", false},
		{"ops", "anything", true},
		{"sensor-9", "sensor-9", true}, // "*" binding: its own identity
		{"sensor-9", "sensor-1", false},
		{"", "", false},
		{"", "x", false},
	} {
		if got := b.Allowed(c.identity, c.clientID); got != c.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", c.identity, c.clientID, got, c.want)
		}
	}

	strict, err := NewBindings([]Binding{{Identity: "sensor-1", ClientIDs: []string{"sensor-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if strict.Allowed("sensor-9", "sensor-9") {
		t.Error("identity without binding allowed without a \"*\" binding")
	}
	var none *Bindings
	if none.Allowed("sensor-1", "sensor-1") {
		t.Error("nil Bindings allowed")
	}
}

func TestBindingsErrors(t *testing.T) {
	for name, list := range map[string][]Binding{
		"empty identity": {{ClientIDs: []string{"x"}}},
		"no client IDs":  {{Identity: "a"}},
		"empty pattern":  {{Identity: "a", ClientIDs: []string{""}}},
		"duplicate":      {{Identity: "a", ClientIDs: []string{"x"}}, {Identity: "a", ClientIDs: []string{"y"}}},
		"two wildcards":  {{Identity: "*", ClientIDs: []string{"x"}}, {Identity: "*", ClientIDs: []string{"y"}}},
	} {
		if _, err := NewBindings(list); err == nil {
			t.Errorf("%s: NewBindings succeeded", name)
		}
	}
}

func TestIdentityKindString(t *testing.T) {
	if IdentityPSK.String() != "psk" || IdentityCertificate.String() != "certificate" || IdentityNone.String() != "none" {
		t.Fatal("IdentityKind.String")
	}
}
