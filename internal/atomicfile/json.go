package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"time"
)

// ErrCorrupt reports a state file that exists but cannot be read back: not
// JSON, a checksum that does not match, or content that does not decode.
// ReadJSON has moved it aside (see Quarantine) before returning it.
var ErrCorrupt = errors.New("corrupt state file")

// envelope wraps the state with a checksum, so that a file that is valid
// JSON but damaged is still detected.
type envelope struct {
	CRC32 uint32          `json:"crc32"`
	State json.RawMessage `json:"state"`
}

// WriteJSON stores v as JSON with a CRC-32, atomically (Write).
func WriteJSON(path string, v any) error {
	state, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	data, err := json.Marshal(envelope{CRC32: crc32.ChecksumIEEE(state), State: state})
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return Write(path, data, 0o600)
}

// ReadJSON loads what WriteJSON stored into v. A missing file returns an
// error wrapping os.ErrNotExist. A corrupt one is renamed to
// path.bad-<time> and an error wrapping ErrCorrupt is returned; the caller
// starts from defaults and says so in its log.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if perr := decodeJSON(data, v); perr != nil {
		bad, qerr := Quarantine(path, time.Now().UTC().Format("20060102T150405.000000000"))
		if qerr != nil {
			return fmt.Errorf("atomicfile: %s: %w: %w (and it could not be moved aside: %v)", path, ErrCorrupt, perr, qerr)
		}
		return fmt.Errorf("atomicfile: %s: %w: %w (kept as %s)", path, ErrCorrupt, perr, bad)
	}
	return nil
}

// PeekJSON is ReadJSON for a file another component owns: a corrupt file
// is an error but is left where it is.
func PeekJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := decodeJSON(data, v); err != nil {
		return fmt.Errorf("atomicfile: %s: %w: %w", path, ErrCorrupt, err)
	}
	return nil
}

func decodeJSON(data []byte, v any) error {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return err
	}
	if len(env.State) == 0 || string(env.State) == "null" {
		return errors.New("no state")
	}
	if crc32.ChecksumIEEE(env.State) != env.CRC32 {
		return errors.New("checksum mismatch")
	}
	return json.Unmarshal(env.State, v)
}
