package client

import (
	"fmt"
	"strings"

	"github.com/sngate/sngate/sn"
)

// TopicRef names a topic the way MQTT-SN can carry it: a normal topic by
// name (registered on first use) or by registered ID, a pre-defined topic
// ID, or a two-character short name. Build one with Topic, TopicID,
// Predefined or Short.
type TopicRef struct {
	Type sn.TopicIDType // Type is the TopicIdType the reference uses on the wire.
	ID   uint16         // ID is the registered or pre-defined topic ID.
	Name string         // Name is the topic name (normal), the short name, or a pre-defined topic's name.
}

// Topic refers to a normal topic by name. Publish registers it when the
// client has no ID for it yet; Subscribe sends the name (wildcards allowed).
func Topic(name string) TopicRef { return TopicRef{Type: sn.TopicIDNormal, Name: name} }

// TopicID refers to a normal topic by an ID the gateway already assigned.
func TopicID(id uint16) TopicRef { return TopicRef{Type: sn.TopicIDNormal, ID: id} }

// Predefined refers to a pre-defined topic ID.
func Predefined(id uint16) TopicRef { return TopicRef{Type: sn.TopicIDPredefined, ID: id} }

// Short refers to a two-character short topic name.
func Short(name string) TopicRef { return TopicRef{Type: sn.TopicIDShort, Name: name} }

// String renders the reference, for example `normal "a/b"` or `predefined 1`.
func (r TopicRef) String() string {
	if r.Name != "" {
		return fmt.Sprintf("%s %q", r.Type, r.Name)
	}
	return fmt.Sprintf("%s %d", r.Type, r.ID)
}

// registry holds the client's view of topic IDs. Callers hold Client.mu.
type registry struct {
	byName     map[string]uint16 // normal topics registered or granted
	byID       map[uint16]string
	predefName map[uint16]string // from Options.PredefinedTopics
	predefID   map[string]uint16
}

func newRegistry(predefined map[string]uint16) registry {
	r := registry{
		byName:     map[string]uint16{},
		byID:       map[uint16]string{},
		predefName: map[uint16]string{},
		predefID:   map[string]uint16{},
	}
	for name, id := range predefined {
		r.predefName[id] = name
		r.predefID[name] = id
	}
	return r
}

// add records that the gateway uses id for name (normal topics).
func (r *registry) add(name string, id uint16) {
	if old, ok := r.byName[name]; ok {
		delete(r.byID, old)
	}
	if old, ok := r.byID[id]; ok {
		delete(r.byName, old)
	}
	r.byName[name] = id
	r.byID[id] = name
}

// forget drops a normal topic ID the gateway no longer accepts.
func (r *registry) forget(id uint16) {
	if name, ok := r.byID[id]; ok {
		delete(r.byName, name)
		delete(r.byID, id)
	}
}

// reset forgets every normal topic ID.
func (r *registry) reset() {
	clear(r.byName)
	clear(r.byID)
}

// name resolves an incoming topic ID; ok is false for an unknown normal ID.
func (r *registry) name(tt sn.TopicIDType, id uint16) (name string, ok bool) {
	switch tt {
	case sn.TopicIDNormal:
		name, ok = r.byID[id]
		return name, ok
	case sn.TopicIDPredefined:
		return r.predefName[id], true
	case sn.TopicIDShort:
		return sn.ShortTopicName(id), true
	}
	return "", false
}

// hasWildcard reports whether a topic filter contains MQTT wildcards.
func hasWildcard(filter string) bool { return strings.ContainsAny(filter, "+#") }

// wireTopic resolves r for SUBSCRIBE/UNSUBSCRIBE: the TopicIdType, the ID
// and the name to send. Caller holds Client.mu.
func (reg *registry) wireTopic(r TopicRef) (sn.TopicIDType, uint16, []byte, error) {
	switch r.Type {
	case sn.TopicIDNormal:
		if r.Name == "" {
			if name, ok := reg.byID[r.ID]; ok {
				return sn.TopicIDNormal, 0, []byte(name), nil
			}
			return 0, 0, nil, fmt.Errorf("%w: %s: SUBSCRIBE needs a topic name", ErrBadTopic, r)
		}
		return sn.TopicIDNormal, 0, []byte(r.Name), nil
	case sn.TopicIDPredefined:
		id, err := reg.predefinedID(r)
		return sn.TopicIDPredefined, id, nil, err
	case sn.TopicIDShort:
		id, ok := sn.ShortTopicID(r.Name)
		if !ok {
			return 0, 0, nil, fmt.Errorf("%w: %s: a short name has exactly 2 characters", ErrBadTopic, r)
		}
		return sn.TopicIDShort, id, nil, nil
	}
	return 0, 0, nil, fmt.Errorf("%w: %s", ErrBadTopic, r)
}

// predefinedID returns r's pre-defined ID, looking its name up if needed.
func (reg *registry) predefinedID(r TopicRef) (uint16, error) {
	if r.ID != 0 || r.Name == "" {
		return r.ID, nil
	}
	id, ok := reg.predefID[r.Name]
	if !ok {
		return 0, fmt.Errorf("%w: %s is not in Options.PredefinedTopics", ErrBadTopic, r)
	}
	return id, nil
}
