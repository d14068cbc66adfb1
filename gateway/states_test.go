package gateway

import "testing"

// Every allowed transition of MQTT-SN 1.2 §6.14, and a sample of refused
// ones, one case each.
func TestTransitions(t *testing.T) {
	cases := []struct {
		from State
		ev   Event
		to   State
		ok   bool
	}{
		{StateDisconnected, EvConnect, StateActive, true},
		{StateDisconnected, EvWillDialogue, StateConnecting, true},
		{StateLost, EvConnect, StateActive, true},
		{StateLost, EvWillDialogue, StateConnecting, true},
		{StateConnecting, EvConnected, StateActive, true},
		{StateConnecting, EvDisconnect, StateDisconnected, true},
		{StateConnecting, EvRetriesExhausted, StateDisconnected, true},
		{StateConnecting, EvConnect, StateActive, true},
		{StateConnecting, EvTakeover, StateDisconnected, true},
		{StateActive, EvDisconnect, StateDisconnected, true},
		{StateActive, EvSleep, StateAsleep, true},
		{StateActive, EvKeepAliveTimeout, StateLost, true},
		{StateActive, EvRetriesExhausted, StateLost, true},
		{StateActive, EvTakeover, StateDisconnected, true},
		{StateActive, EvConnect, StateActive, true},
		{StateAsleep, EvWake, StateAwake, true},
		{StateAsleep, EvSleep, StateAsleep, true},
		{StateAsleep, EvSleepTimeout, StateLost, true},
		{StateAsleep, EvDisconnect, StateDisconnected, true},
		{StateAsleep, EvConnect, StateActive, true},
		{StateAsleep, EvWillDialogue, StateConnecting, true},
		{StateAsleep, EvTakeover, StateDisconnected, true},
		{StateAwake, EvFlushed, StateAsleep, true},
		{StateAwake, EvWake, StateAwake, true},
		{StateAwake, EvSleep, StateAsleep, true},
		{StateAwake, EvRetriesExhausted, StateLost, true},
		{StateAwake, EvSleepTimeout, StateLost, true},
		{StateAwake, EvDisconnect, StateDisconnected, true},
		{StateAwake, EvConnect, StateActive, true},
		{StateAwake, EvTakeover, StateDisconnected, true},

		{StateDisconnected, EvSleep, StateDisconnected, false},
		{StateDisconnected, EvWake, StateDisconnected, false},
		{StateActive, EvWake, StateActive, false},
		{StateActive, EvFlushed, StateActive, false},
		{StateActive, EvSleepTimeout, StateActive, false},
		{StateAsleep, EvKeepAliveTimeout, StateAsleep, false},
		{StateAsleep, EvRetriesExhausted, StateAsleep, false},
		{StateAsleep, EvFlushed, StateAsleep, false},
		{StateConnecting, EvSleep, StateConnecting, false},
		{StateLost, EvDisconnect, StateLost, false},
		{numStates, EvConnect, numStates, false},
		{StateActive, numEvents, StateActive, false},
	}
	for _, c := range cases {
		t.Run(c.from.String()+"/"+c.ev.String(), func(t *testing.T) {
			to, ok := Transition(c.from, c.ev)
			if to != c.to || ok != c.ok {
				t.Fatalf("Transition(%v, %v) = %v, %v; want %v, %v", c.from, c.ev, to, ok, c.to, c.ok)
			}
		})
	}
}

func TestTimerHeap(t *testing.T) {
	var h timerHeap
	slots := make([]timerSlot, 50)
	for i := range slots {
		slots[i].idx = -1
		h.set(&slots[i], int64((i*37)%50))
	}
	h.stop(&slots[10])
	h.set(&slots[11], -5)
	prev := int64(-1 << 62)
	n := 0
	for s := h.pop(1 << 62); s != nil; s = h.pop(1 << 62) {
		if s.when < prev {
			t.Fatalf("out of order: %d after %d", s.when, prev)
		}
		prev = s.when
		n++
	}
	if n != 49 {
		t.Fatalf("popped %d", n)
	}
}

func TestRegistry(t *testing.T) {
	var r registry
	ids := map[uint16]bool{}
	for i := 0; i < 40; i++ {
		id, _, ok := r.add("t/"+itoa(i), i%2 == 0, false, 40)
		if !ok || id == 0 || ids[id] {
			t.Fatalf("add %d: %d %v", i, id, ok)
		}
		ids[id] = true
	}
	if _, _, ok := r.add("client/full", false, false, 40); ok {
		t.Fatal("client registration beyond the bound accepted")
	}
	id, recycled, ok := r.add("gw/new", true, true, 40)
	if !ok || !recycled {
		t.Fatal("gateway registration did not recycle")
	}
	if name, _ := r.name(id); name != "gw/new" {
		t.Fatalf("recycled id %d names %q", id, name)
	}
	if _, ready, _ := r.lookup("gw/new"); ready {
		t.Fatal("pending entry ready")
	}
	r.confirm(id)
	if _, ready, _ := r.lookup("gw/new"); !ready {
		t.Fatal("confirmed entry not ready")
	}
	r.remove(id)
	if _, ok := r.name(id); ok {
		t.Fatal("removed id still known")
	}
}
