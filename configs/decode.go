package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// parse decodes data strictly into a Config holding the defaults for
// every key the file does not set. It never opens a file. It returns the
// dotted keys the file sets (with their lines) and every problem found:
// unknown keys, keys set twice, wrong types, bad scalar values. c is nil
// only when the file is not YAML at all.
//
// The file is first read into a yaml.Node tree and then walked against
// the Config struct's yaml tags: that is what lets every error carry the
// full dotted key and line, lets all unknown keys be reported at once, and
// tells "unset" from "set to 0".
func parse(data []byte, file string) (*Config, map[string]int, []*Error) {
	c := Defaults()
	set := map[string]int{}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, set, nil
	}
	var doc yaml.Node
	ld, err := yaml.NewLoader(bytes.NewReader(data))
	if err == nil {
		err = ld.Load(&doc)
	}
	if errors.Is(err, io.EOF) { // no document: comments only
		return c, set, nil
	}
	if err != nil {
		return nil, nil, []*Error{yamlError(file, err)}
	}
	var extra yaml.Node
	switch err := ld.Load(&extra); {
	case err == nil:
		return nil, nil, []*Error{{File: file, Line: extra.Line, Msg: "a second YAML document (---); the config is one document"}}
	case !errors.Is(err, io.EOF):
		return nil, nil, []*Error{yamlError(file, err)}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return c, set, nil
		}
		root = root.Content[0]
	}
	d := &decoder{file: file, set: set}
	d.value(root, "", reflect.ValueOf(c).Elem(), 0)
	// c is usable even with errors (bad values keep their defaults), so the
	// value checks can still run and report their problems too.
	return c, set, d.errs
}

// yamlError turns a syntax error of the yaml package into an *Error with
// its line.
func yamlError(file string, err error) *Error {
	var le *yaml.LoadError
	if errors.As(err, &le) {
		return &Error{File: file, Line: le.Mark.Line, Msg: "invalid YAML: " + le.Message}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

type decoder struct {
	file string
	set  map[string]int
	errs []*Error
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// maxDepth bounds alias chains; the schema itself is 4 levels deep.
const maxDepth = 16

var (
	byteSizeType  = reflect.TypeFor[ByteSize]()
	durationType  = reflect.TypeFor[Duration]()
	recipientType = reflect.TypeFor[Recipient]()
	namesType     = reflect.TypeFor[Names]()
)

// value decodes node n into v, whose dotted key is key.
func (d *decoder) value(n *yaml.Node, key string, v reflect.Value, depth int) {
	if depth > maxDepth {
		d.fail(n, key, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, key, "unresolved alias")
			return
		}
		d.value(n.Alias, key, v, depth+1)
		return
	}
	if isNull(n) {
		// "key:" with nothing after it: keep the default.
		return
	}
	if key != "" {
		d.set[key] = n.Line
	}
	if d.special(n, key, v) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, key, v, depth)
	case reflect.Slice:
		d.list(n, key, v, depth)
	case reflect.Map:
		d.stringMap(n, key, v, depth)
	default:
		d.scalar(n, key, v)
	}
}

// special decodes the types with a syntax of their own; false when v is
// not one of them (or n is not written in that syntax).
func (d *decoder) special(n *yaml.Node, key string, v reflect.Value) bool {
	switch {
	case v.Type() == byteSizeType:
		d.byteSize(n, key, v)
	case v.Type() == durationType:
		d.duration(n, key, v)
	case v.Type() == recipientType && n.Kind == yaml.ScalarNode:
		d.recipient(n, key, v)
	case v.Type() == namesType && n.Kind == yaml.ScalarNode:
		// One word for a list of it: "folders: all".
		v.Set(reflect.ValueOf(Names{n.Value}))
	default:
		return false
	}
	return true
}

func (d *decoder) list(n *yaml.Node, key string, v reflect.Value, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, key, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, fmt.Sprintf("%s[%d]", key, i), s.Index(i), depth+1)
	}
	v.Set(s)
}

// scalar decodes a string, a boolean or a whole number.
func (d *decoder) scalar(n *yaml.Node, key string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, key, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, key, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(n, key, "want a whole number, got %s", describe(n))
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, key, "%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	default:
		// Unreachable: Config only holds the kinds above.
		d.fail(n, key, "unsupported field type %s", v.Type())
	}
}

func (d *decoder) structure(n *yaml.Node, key string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping of keys"
		if key == "" {
			what = "a mapping with the sections zendesk, sources, mapping, pipeline, checkpoint"
		}
		d.fail(n, key, "want %s, got %s", what, describe(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		sub := join(key, name)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, key, "a key must be a plain name, got %s", describe(k))
			continue
		}
		if line, dup := seen[name]; dup {
			d.fail(k, sub, "set twice (first on line %d)", line)
			continue
		}
		seen[name] = k.Line
		idx, ok := fields[name]
		if !ok {
			msg := "unknown key"
			if k.ShortTag() == "!!merge" {
				msg = "merge keys (<<) are not supported"
			} else if s := suggest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", join(key, s))
			}
			d.fail(k, sub, "%s", msg)
			continue
		}
		d.value(val, sub, v.Field(idx), depth+1)
	}
}

func (d *decoder) stringMap(n *yaml.Node, key string, v reflect.Value, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "want a mapping of name: name, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := join(key, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, key, "a key must be a plain name, got %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, sub, "set twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		for val.Kind == yaml.AliasNode && val.Alias != nil && depth < maxDepth {
			val = val.Alias
			depth++
		}
		if val.Kind != yaml.ScalarNode || isNull(val) {
			d.fail(val, sub, "want a field name, got %s", describe(val))
			continue
		}
		d.set[sub] = k.Line
		m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
	}
	v.Set(m)
}

func (d *decoder) byteSize(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, key, "want a size such as 25MiB, got %s", describe(n))
		return
	}
	b, err := ParseByteSize(n.Value)
	if err != nil {
		d.fail(n, key, "%v", err)
		return
	}
	v.SetInt(int64(b))
}

func (d *decoder) duration(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, key, "want a duration such as 30s, got %s", describe(n))
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.fail(n, key, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

// recipient decodes a recipient written as an address ("Name <addr>" or
// a bare address); the mapping form is decoded as a struct.
func (d *decoder) recipient(n *yaml.Node, key string, v reflect.Value) {
	if n.ShortTag() != "!!str" {
		d.fail(n, key, "want an address such as archive@acme.com, or {user_id: 123456} for an agent, got %s", describe(n))
		return
	}
	s := strings.TrimSpace(n.Value)
	if s == "" {
		return // none
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		d.fail(n, key, "%q is not an email address (want archive@acme.com, \"Archive <archive@acme.com>\", or {user_id: 123456} for an agent)", s)
		return
	}
	v.Set(reflect.ValueOf(Recipient{Email: a.Address, Name: a.Name}))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return strconv.Quote(v)
		case "!!int":
			return "the number " + v
		case "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		}
		return v
	}
	return "something else"
}

// suggest returns the known name closest to an unknown one, if close.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(name), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
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

func sortErrors(errs []*Error) {
	sort.SliceStable(errs, func(i, j int) bool {
		if (errs[i].Line == 0) != (errs[j].Line == 0) {
			return errs[i].Line != 0 // file problems first, in line order
		}
		return errs[i].Line < errs[j].Line
	})
}
