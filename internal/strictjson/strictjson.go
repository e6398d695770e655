// Package strictjson reads the JSON files a user writes by hand (reward manifests), where a
// misspelt field must be an error rather than a default silently taken, and every value is
// checked before use.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Decode decodes the one JSON object of data into v: an unknown field, or anything after
// the object, is an error ("invalid JSON: ...").
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: data after the manifest object")
	}
	return nil
}

// Validator checks a decoded value and fills its defaults.
type Validator interface{ Validate() error }

// Parse decodes data into v (Decode) and validates it.
func Parse(data []byte, v Validator) error {
	if err := Decode(data, v); err != nil {
		return err
	}
	return v.Validate()
}

// Load reads the file at path and parses it into v; errors name what it is and the file
// ("reward manifest m.json: ...").
func Load(what, path string, v Validator) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := Parse(data, v); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}
