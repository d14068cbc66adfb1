package radios

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Semtech UDP packet-forwarder ("GWMP") packet identifiers.
const (
	GWMPPushData = 0x00 // forwarder -> server: EUI + {"rxpk":[...],"stat":{...}}
	GWMPPushAck  = 0x01 // server -> forwarder
	GWMPPullData = 0x02 // forwarder -> server: EUI (keep-alive, opens the downlink path)
	GWMPPullResp = 0x03 // server -> forwarder: {"txpk":{...}}
	GWMPPullAck  = 0x04 // server -> forwarder
	GWMPTxAck    = 0x05 // forwarder -> server (v2): EUI + optional {"txpk_ack":{...}}
)

// Errors of the GWMP codec.
var (
	// ErrGWMPVersion: a protocol version other than 1 or 2.
	ErrGWMPVersion = errors.New("radios: unknown packet-forwarder protocol version")
	// ErrGWMPType: an unknown packet identifier (or TX_ACK in version 1).
	ErrGWMPType = errors.New("radios: unknown packet-forwarder packet type")
	// ErrGWMPShort: the datagram is shorter than its fixed header.
	ErrGWMPShort = errors.New("radios: packet-forwarder datagram too short")
	// ErrGWMPJSON: the JSON body is malformed.
	ErrGWMPJSON = errors.New("radios: malformed packet-forwarder JSON")
	// ErrGWMPData: a base64 payload is malformed or disagrees with size.
	ErrGWMPData = errors.New("radios: malformed packet-forwarder payload")
)

// GWMPPacket is one packet-forwarder datagram. JSON aliases the datagram.
type GWMPPacket struct {
	Version uint8   // 1 or 2
	Token   uint16  // random token echoed by the acknowledgement
	Type    uint8   // GWMP* identifier
	EUI     [8]byte // gateway EUI (PUSH_DATA, PULL_DATA, TX_ACK)
	JSON    []byte  // JSON body (PUSH_DATA, PULL_RESP, TX_ACK), may be empty
}

func gwmpHasEUI(t uint8) bool {
	return t == GWMPPushData || t == GWMPPullData || t == GWMPTxAck
}

// ParseGWMP decodes a datagram's header. It checks version and type
// and that the EUI is present where the type has one; it does not parse
// the JSON (see DecodePushData, DecodePullResp, DecodeTxAck).
func ParseGWMP(b []byte) (GWMPPacket, error) {
	var p GWMPPacket
	if len(b) < 4 {
		return p, fmt.Errorf("%w: %d bytes", ErrGWMPShort, len(b))
	}
	p.Version, p.Token, p.Type = b[0], binary.BigEndian.Uint16(b[1:3]), b[3]
	if p.Version != 1 && p.Version != 2 {
		return p, fmt.Errorf("%w %d", ErrGWMPVersion, p.Version)
	}
	if p.Type > GWMPTxAck || (p.Type == GWMPTxAck && p.Version == 1) {
		return p, fmt.Errorf("%w 0x%02X (version %d)", ErrGWMPType, p.Type, p.Version)
	}
	rest := b[4:]
	if gwmpHasEUI(p.Type) {
		if len(rest) < 8 {
			return p, fmt.Errorf("%w: type 0x%02X needs a gateway EUI", ErrGWMPShort, p.Type)
		}
		copy(p.EUI[:], rest[:8])
		rest = rest[8:]
	}
	switch p.Type {
	case GWMPPushData, GWMPPullResp, GWMPTxAck:
		p.JSON = rest
	}
	return p, nil
}

// Append encodes the packet to dst.
func (p *GWMPPacket) Append(dst []byte) []byte {
	dst = append(dst, p.Version)
	dst = binary.BigEndian.AppendUint16(dst, p.Token)
	dst = append(dst, p.Type)
	if gwmpHasEUI(p.Type) {
		dst = append(dst, p.EUI[:]...)
	}
	return append(dst, p.JSON...)
}

// DataRate is a packet-forwarder "datr": a LoRa string such as
// "SF7BW125" or an FSK bit rate as a number.
type DataRate struct {
	LoRa string // e.g. "SF12BW125"; empty for FSK
	FSK  uint32 // bits per second, for FSK
}

// MarshalJSON writes the string or the number.
func (d DataRate) MarshalJSON() ([]byte, error) {
	if d.LoRa != "" {
		return json.Marshal(d.LoRa)
	}
	return strconv.AppendUint(nil, uint64(d.FSK), 10), nil
}

// UnmarshalJSON accepts a string (LoRa) or a number (FSK).
func (d *DataRate) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &d.LoRa)
	}
	return json.Unmarshal(b, &d.FSK)
}

// SFBW parses a LoRa data rate "SF<n>BW<khz>".
func (d DataRate) SFBW() (sf, bwHz int, err error) {
	var khz int
	if _, err := fmt.Sscanf(d.LoRa, "SF%dBW%d", &sf, &khz); err != nil {
		return 0, 0, fmt.Errorf("%w: datr %q: %v", ErrGWMPData, d.LoRa, err)
	}
	return sf, khz * 1000, nil
}

// RXPK is one received packet in PUSH_DATA.
type RXPK struct {
	Time string   `json:"time,omitempty"` // UTC, ISO 8601 compact
	Tmms *int64   `json:"tmms,omitempty"` // GPS time, ms since 1980
	Tmst uint32   `json:"tmst"`           // concentrator counter, µs
	Freq float64  `json:"freq"`           // MHz
	Chan uint     `json:"chan"`
	RFCh uint     `json:"rfch"`
	Stat int      `json:"stat"` // 1 CRC ok, -1 CRC bad, 0 no CRC
	Modu string   `json:"modu"` // "LORA" or "FSK"
	DatR DataRate `json:"datr"`
	CodR string   `json:"codr,omitempty"` // "4/5"
	RSSI int      `json:"rssi"`
	LSNR float64  `json:"lsnr,omitempty"`
	Size uint     `json:"size"`
	Data string   `json:"data"` // base64
}

// Payload decodes Data and checks it against Size.
func (r *RXPK) Payload() ([]byte, error) { return decodePFData(r.Data, r.Size) }

// Stat is the gateway status report in PUSH_DATA.
type Stat struct {
	Time string  `json:"time"` // "2014-01-12 08:59:28 GMT"
	Lati float64 `json:"lati,omitempty"`
	Long float64 `json:"long,omitempty"`
	Alti int     `json:"alti,omitempty"`
	RXNb uint    `json:"rxnb"`
	RXOK uint    `json:"rxok"`
	RXFW uint    `json:"rxfw"`
	ACKR float64 `json:"ackr"`
	DWNb uint    `json:"dwnb"`
	TXNb uint    `json:"txnb"`
}

// PushData is the JSON body of PUSH_DATA.
type PushData struct {
	RXPK []RXPK `json:"rxpk,omitempty"`
	Stat *Stat  `json:"stat,omitempty"`
}

// TXPK is the packet to send in PULL_RESP.
type TXPK struct {
	Imme bool     `json:"imme,omitempty"` // send immediately
	Tmst *uint32  `json:"tmst,omitempty"` // send at this counter value
	Tmms *int64   `json:"tmms,omitempty"` // send at this GPS time
	Freq float64  `json:"freq"`           // MHz
	RFCh uint     `json:"rfch"`
	Powe int      `json:"powe,omitempty"` // dBm
	Modu string   `json:"modu"`
	DatR DataRate `json:"datr"`
	CodR string   `json:"codr,omitempty"`
	FDev uint     `json:"fdev,omitempty"` // FSK deviation, Hz
	IPol bool     `json:"ipol"`           // invert polarity (LoRaWAN downlinks)
	Prea uint     `json:"prea,omitempty"`
	Size uint     `json:"size"`
	Data string   `json:"data"`
	NCRC bool     `json:"ncrc,omitempty"` // no CRC
}

// SetPayload stores p base64-encoded and sets Size.
func (t *TXPK) SetPayload(p []byte) {
	t.Data = base64.StdEncoding.EncodeToString(p)
	t.Size = uint(len(p))
}

// Payload decodes Data and checks it against Size.
func (t *TXPK) Payload() ([]byte, error) { return decodePFData(t.Data, t.Size) }

// PullResp is the JSON body of PULL_RESP.
type PullResp struct {
	TXPK TXPK `json:"txpk"`
}

// TX_ACK error strings (protocol version 2).
const (
	TxAckNone            = "NONE"             // accepted
	TxAckTooLate         = "TOO_LATE"         // too late for the scheduled time
	TxAckTooEarly        = "TOO_EARLY"        // too far ahead
	TxAckCollisionPacket = "COLLISION_PACKET" // overlaps another downlink
	TxAckCollisionBeacon = "COLLISION_BEACON" // overlaps a beacon
	TxAckTxFreq          = "TX_FREQ"          // frequency not supported
	TxAckTxPower         = "TX_POWER"         // power not supported
	TxAckGPSUnlocked     = "GPS_UNLOCKED"     // GPS time unavailable
)

// TxAckInfo is the body of TX_ACK.
type TxAckInfo struct {
	Error string `json:"error,omitempty"`
	Warn  string `json:"warn,omitempty"`
}

// TxAck is the JSON body of TX_ACK; an empty body means success.
type TxAck struct {
	TxpkAck TxAckInfo `json:"txpk_ack"`
}

// OK reports whether the forwarder accepted the downlink.
func (a TxAck) OK() bool { return a.TxpkAck.Error == "" || a.TxpkAck.Error == TxAckNone }

// maxPFPayload bounds the decoded size of one packet (LoRa PHY max).
const maxPFPayload = 255

func decodePFData(s string, size uint) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > maxPFPayload+3 {
		return nil, fmt.Errorf("%w: %d base64 characters", ErrGWMPData, len(s))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some forwarders drop the padding.
		b, err = base64.RawStdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: base64: %v", ErrGWMPData, err)
		}
	}
	if uint(len(b)) != size {
		return nil, fmt.Errorf("%w: size %d but %d bytes of data", ErrGWMPData, size, len(b))
	}
	return b, nil
}

func decodeJSON(body []byte, v any, what string) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrGWMPJSON, what, err)
	}
	return nil
}

// DecodePushData parses the JSON body of PUSH_DATA.
func DecodePushData(body []byte) (PushData, error) {
	var d PushData
	err := decodeJSON(body, &d, "push_data")
	return d, err
}

// DecodePullResp parses the JSON body of PULL_RESP.
func DecodePullResp(body []byte) (PullResp, error) {
	var r PullResp
	err := decodeJSON(body, &r, "pull_resp")
	return r, err
}

// DecodeTxAck parses the JSON body of TX_ACK; an empty body is success.
func DecodeTxAck(body []byte) (TxAck, error) {
	var a TxAck
	if len(bytes.TrimSpace(body)) == 0 {
		return a, nil
	}
	err := decodeJSON(body, &a, "tx_ack")
	return a, err
}

// EncodeJSON marshals a body (PushData, PullResp, TxAck) for Append.
func EncodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("radios: encode packet-forwarder JSON: %w", err)
	}
	return b, nil
}
