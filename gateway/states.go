package gateway

// State is a client's state as the gateway sees it (MQTT-SN 1.2 §6.14),
// plus Connecting for the will dialogue between CONNECT and CONNACK.
type State uint8

// Client states.
const (
	StateDisconnected State = iota // no session attached (also the initial state)
	StateConnecting                // CONNECT received, will dialogue in progress
	StateActive                    // connected and awake
	StateAsleep                    // DISCONNECT(duration) acknowledged; messages are buffered
	StateAwake                     // woken by PINGREQ; buffered messages are being delivered
	StateLost                      // keep-alive, sleep or retransmission timeout; will published
	numStates
)

var stateNames = [numStates]string{"disconnected", "connecting", "active", "asleep", "awake", "lost"}

// String returns the state's name.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "invalid"
}

// Event is what moves a client between states.
type Event uint8

// Client events.
const (
	EvConnect          Event = iota // CONNECT accepted without will dialogue (CONNACK sent)
	EvWillDialogue                  // CONNECT with the Will flag: WILLTOPICREQ sent
	EvConnected                     // will dialogue done, CONNACK sent
	EvDisconnect                    // DISCONNECT without duration
	EvSleep                         // DISCONNECT with duration
	EvWake                          // PINGREQ while asleep
	EvFlushed                       // all buffered messages delivered: PINGRESP sent
	EvKeepAliveTimeout              // nothing heard for keep-alive x tolerance
	EvSleepTimeout                  // sleep duration x tolerance passed
	EvRetriesExhausted              // a gateway request went unanswered N_RETRY times
	EvTakeover                      // the broker gave the session to another connection
	numEvents
)

var eventNames = [numEvents]string{"connect", "will-dialogue", "connected", "disconnect", "sleep",
	"wake", "flushed", "keepalive-timeout", "sleep-timeout", "retries-exhausted", "takeover"}

// String returns the event's name.
func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return "invalid"
}

// invalid marks a transition that is not allowed.
const invalid = numStates

// transitions is the client state machine: transitions[from][event] is
// the next state, or invalid.
var transitions = func() [numStates][numEvents]State {
	var t [numStates][numEvents]State
	for s := range t {
		for e := range t[s] {
			t[s][e] = invalid
		}
	}
	set := func(from State, ev Event, to State) { t[from][ev] = to }
	for _, s := range []State{StateDisconnected, StateLost, StateActive, StateAsleep, StateAwake, StateConnecting} {
		set(s, EvConnect, StateActive)
		set(s, EvWillDialogue, StateConnecting)
	}
	set(StateConnecting, EvConnected, StateActive)
	set(StateConnecting, EvDisconnect, StateDisconnected)
	set(StateConnecting, EvRetriesExhausted, StateDisconnected)
	set(StateConnecting, EvTakeover, StateDisconnected)

	set(StateActive, EvDisconnect, StateDisconnected)
	set(StateActive, EvSleep, StateAsleep)
	set(StateActive, EvKeepAliveTimeout, StateLost)
	set(StateActive, EvRetriesExhausted, StateLost)
	set(StateActive, EvTakeover, StateDisconnected)

	set(StateAsleep, EvWake, StateAwake)
	set(StateAsleep, EvSleep, StateAsleep)
	set(StateAsleep, EvSleepTimeout, StateLost)
	set(StateAsleep, EvDisconnect, StateDisconnected)
	set(StateAsleep, EvTakeover, StateDisconnected)

	set(StateAwake, EvFlushed, StateAsleep)
	set(StateAwake, EvWake, StateAwake)
	set(StateAwake, EvSleep, StateAsleep)
	set(StateAwake, EvSleepTimeout, StateLost)
	set(StateAwake, EvRetriesExhausted, StateLost)
	set(StateAwake, EvDisconnect, StateDisconnected)
	set(StateAwake, EvTakeover, StateDisconnected)
	return t
}()

// Transition returns the state that event ev leads to from state s, and
// false when ev is not valid in s.
func Transition(s State, ev Event) (State, bool) {
	if s >= numStates || ev >= numEvents {
		return s, false
	}
	to := transitions[s][ev]
	if to == invalid {
		return s, false
	}
	return to, true
}

// connected reports whether a client in state s has an attached session.
func (s State) connected() bool {
	return s == StateActive || s == StateAsleep || s == StateAwake
}

// receiving reports whether a client in state s takes deliveries now.
func (s State) receiving() bool { return s == StateActive || s == StateAwake }
