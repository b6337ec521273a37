package messages

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// encoding/json matches object keys to struct fields without regard to
// letter case ("JOBID" fills jobId). A strict decoder must not: a key that
// is not spelled exactly as documented is an unknown field. checkFieldCase
// walks a JSON document already decoded into a value of type t and reports
// the first object key that names one of t's fields only case-insensitively.

// fieldNames returns the exact JSON names of struct type t's fields, each
// with its type (fields of embedded structs included).
func fieldNames(t reflect.Type) map[string]reflect.Type {
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]reflect.Type)
	}
	names := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range fieldNames(ft) {
					names[n] = typ
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = f.Type
	}
	fieldNameCache.Store(t, names)
	return names
}

var fieldNameCache sync.Map // reflect.Type → map[string]reflect.Type

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessage      = reflect.TypeFor[json.RawMessage]()
)

// checkFieldCase reports, as an *InputError matching [ErrMalformed], the
// first object key of b that matches a field of t only when letter case is
// ignored. b must be valid JSON.
func checkFieldCase(b []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return walkFieldCase(dec, t)
}

// walkFieldCase reads one JSON value from dec, checking the keys of every
// object that maps to a struct.
func walkFieldCase(dec *json.Decoder, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	opaque := t == rawMessage || t.Kind() == reflect.Interface ||
		reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		return nil // a scalar
	}
	if opaque {
		return skipRest(dec)
	}
	switch {
	case d == '{' && t.Kind() == reflect.Struct:
		names := fieldNames(t)
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			ft, exact := names[key]
			if !exact {
				for name := range names {
					if strings.EqualFold(name, key) {
						return inputError(ErrMalformed, "unknown field "+truncate(strconv.Quote(key), 80)+" (field names are case-sensitive)")
					}
				}
				if err := skipValue(dec); err != nil {
					return err
				}
				continue
			}
			if err := walkFieldCase(dec, ft); err != nil {
				return err
			}
		}
	case d == '{' && t.Kind() == reflect.Map:
		for dec.More() {
			if _, err := dec.Token(); err != nil {
				return err
			}
			if err := walkFieldCase(dec, t.Elem()); err != nil {
				return err
			}
		}
	case d == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for dec.More() {
			if err := walkFieldCase(dec, t.Elem()); err != nil {
				return err
			}
		}
	default:
		return skipRest(dec)
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// skipValue reads and discards one JSON value.
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if _, ok := tok.(json.Delim); ok {
		return skipRest(dec)
	}
	return nil
}

// skipRest discards the rest of an object or array whose opening delimiter
// was just read.
func skipRest(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}
