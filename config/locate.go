package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// lineOf returns the line of the node at path (dots and [index], as in
// filters.FieldError), or of its nearest ancestor that the file has: a field
// that is missing is reported where its parent block is.
func lineOf(root ast.Node, path string) int {
	line := 0
	if root != nil && root.GetToken() != nil {
		line = root.GetToken().Position.Line
	}
	node := root
	for _, seg := range splitPath(path) {
		next := child(node, seg)
		if next == nil {
			break
		}
		node = next
		if tk := node.GetToken(); tk != nil {
			line = tk.Position.Line
		}
	}
	// An empty document or "{}" has no line of its own: the problem is
	// the file's, at its top.
	return max(line, 1)
}

// splitPath turns "policies[1].rate" into ["policies", "[1]", "rate"].
func splitPath(path string) []string {
	var segs []string
	for _, part := range strings.Split(path, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				segs, part = append(segs, part), ""
			case i > 0:
				segs, part = append(segs, part[:i]), part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					segs, part = append(segs, part), ""
					continue
				}
				segs, part = append(segs, part[:j+1]), part[j+1:]
			}
		}
	}
	return segs
}

// child returns the value under key seg of a mapping, or element [n] of a
// sequence; for a mapping key it returns the key node's value but reports
// the key's own line through the value's token when the value is a block.
func child(node ast.Node, seg string) ast.Node {
	switch n := unwrap(node).(type) {
	case *ast.MappingNode:
		for _, kv := range n.Values {
			if kv.Key != nil && keyName(kv.Key) == seg {
				if isBlock(kv.Value) {
					return keyed{kv}
				}
				return kv.Value
			}
		}
	case *ast.MappingValueNode:
		if n.Key != nil && keyName(n.Key) == seg {
			if isBlock(n.Value) {
				return keyed{n}
			}
			return n.Value
		}
	case *ast.SequenceNode:
		if strings.HasPrefix(seg, "[") && strings.HasSuffix(seg, "]") {
			i, err := strconv.Atoi(seg[1 : len(seg)-1])
			if err == nil && i >= 0 && i < len(n.Values) {
				return n.Values[i]
			}
		}
	}
	return nil
}

// keyed stands for a block value but carries its key's position, so that an
// error about a whole block points at the line that names it.
type keyed struct{ *ast.MappingValueNode }

func (k keyed) GetToken() *token.Token { return k.MappingValueNode.Key.GetToken() }

func unwrap(node ast.Node) ast.Node {
	switch n := node.(type) {
	case keyed:
		return n.MappingValueNode.Value
	case *ast.TagNode:
		return n.Value
	case *ast.AnchorNode:
		return n.Value
	}
	return node
}

func isBlock(node ast.Node) bool {
	switch unwrap(node).(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return true
	}
	return false
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.InterfaceUnmarshaler]()
)

// valueErrors walks the document and the Go type side by side and reports
// every value that cannot land where it is: a scalar that a
// TextUnmarshaler (durations, sizes, rates, prefixes, modes) refuses, or a
// value of the wrong kind (a word for a number, a list for a block). Each
// is reported at its own line, in the user's terms, all of them at once;
// the YAML library stops at the first, in Go's terms. A bad value is then
// replaced by null in the tree, so that the rest of the file can still be
// decoded and validated in the same run.
func valueErrors(node ast.Node, t reflect.Type, path string, report func(path string, line int, err error)) {
	eachValue(node, t, func(key string, value ast.Node, vt reflect.Type, set func(ast.Node)) {
		p := path + key
		if err := kindError(value, vt); err != nil {
			report(p, value.GetToken().Position.Line, err)
			set(ast.Null(value.GetToken()))
			return
		}
		valueErrors(value, vt, p, report)
	})
}

// eachValue calls fn for each value below node that the type t gives a
// type to: the fields of a struct (by key), the values of a map, the
// elements of a list. key is the path step (".name" or "[i]"); set
// replaces the value in the tree.
func eachValue(node ast.Node, t reflect.Type, fn func(key string, value ast.Node, vt reflect.Type, set func(ast.Node))) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	node = unwrap(node)
	if node == nil || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	step := func(key string) string { return "." + key }
	switch t.Kind() {
	case reflect.Struct:
		eachPairNode(node, func(kv *ast.MappingValueNode) {
			if ft, ok := blockType(t, keyName(kv.Key)); ok && kv.Value != nil {
				fn(step(keyName(kv.Key)), kv.Value, ft, func(n ast.Node) { kv.Value = n })
			}
		})
	case reflect.Map:
		eachPairNode(node, func(kv *ast.MappingValueNode) {
			if kv.Value != nil {
				fn(step(keyName(kv.Key)), kv.Value, t.Elem(), func(n ast.Node) { kv.Value = n })
			}
		})
	case reflect.Slice, reflect.Array:
		if seq, ok := node.(*ast.SequenceNode); ok {
			for i, v := range seq.Values {
				fn("["+strconv.Itoa(i)+"]", v, t.Elem(), func(n ast.Node) { seq.Values[i] = n })
			}
		}
	}
}

func eachPairNode(node ast.Node, fn func(*ast.MappingValueNode)) {
	switch n := node.(type) {
	case *ast.MappingNode:
		for _, kv := range n.Values {
			fn(kv)
		}
	case *ast.MappingValueNode:
		fn(n)
	}
}

// kindError says, in the file's terms, why value cannot be a t: nil when
// it can (or when the decoder is the better judge, as for aliases).
func kindError(value ast.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	value = unwrap(value)
	if value == nil {
		return nil
	}
	switch value.Type() {
	case ast.NullType, ast.AliasType:
		return nil
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) && !isMapping(value) {
		// It reads other forms too (access: false); the decoder judges.
		return nil
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := value.(ast.ScalarNode)
		if !ok {
			return &kindErr{want: textWant(t), got: describe(value)}
		}
		v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		return v.UnmarshalText([]byte(scalarText(s)))
	}
	want := ""
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if value.Type() != ast.IntegerType {
			return &kindErr{want: "an integer", got: describe(value), integer: true}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := value.(*ast.IntegerNode); !ok || strings.HasPrefix(n.String(), "-") {
			want = "a whole number, 0 or more"
		}
	case reflect.Float32, reflect.Float64:
		if value.Type() != ast.IntegerType && value.Type() != ast.FloatType {
			want = "a number"
		}
	case reflect.Bool:
		if value.Type() != ast.BoolType {
			want = "true or false"
		}
	case reflect.String:
		if _, ok := value.(ast.ScalarNode); !ok {
			want = "a single value"
		}
	case reflect.Struct, reflect.Map:
		if !isMapping(value) {
			want = "a block of keys"
		}
	case reflect.Slice, reflect.Array:
		if value.Type() != ast.SequenceType {
			want = "a list"
		}
	}
	if want == "" {
		return nil
	}
	return &kindErr{want: want, got: describe(value)}
}

// textWant is what a value read from text must look like, in its own
// parser's words: the "want ..." of the error it gives for a value that
// cannot be one ("block, shadow or off"), or "a single value".
func textWant(t reflect.Type) string {
	v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
	if err := v.UnmarshalText([]byte("\x00")); err != nil {
		if _, want, ok := strings.Cut(err.Error(), "want "); ok {
			return want
		}
	}
	return "a single value"
}

// kindErr is a value of the wrong kind: what the field wants, what the
// file has.
type kindErr struct {
	want, got string
	integer   bool // the field is an integer, whose range Parse can add
}

func (e *kindErr) Error() string { return fmt.Sprintf("want %s, got %s", e.want, e.got) }

// withRange adds the range r of the integers the field accepts to what it
// wants: "want an integer 1-4, got "high"".
func (e *kindErr) withRange(r intRange) *kindErr {
	out := *e
	out.want += r.String()
	return &out
}

func isMapping(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

// describe names a value as the user wrote it: a scalar quoted, a
// block or list by its kind.
func describe(n ast.Node) string {
	switch {
	case isMapping(n):
		return "a block of keys"
	case n.Type() == ast.SequenceType:
		return "a list"
	}
	if s, ok := n.(ast.ScalarNode); ok {
		return strconv.Quote(scalarText(s))
	}
	return n.Type().String()
}

func scalarText(s ast.ScalarNode) string {
	if v, ok := s.GetValue().(string); ok {
		return v
	}
	return s.String()
}

func eachPair(node ast.Node, fn func(key string, value ast.Node)) {
	switch n := node.(type) {
	case *ast.MappingNode:
		for _, kv := range n.Values {
			fn(keyName(kv.Key), kv.Value)
		}
	case *ast.MappingValueNode:
		fn(keyName(n.Key), n.Value)
	}
}

// keyName is a mapping key as the decoder reads it: "listen", 'listen'
// and listen are one key, and so is an explicit "? listen".
func keyName(k ast.MapKeyNode) string {
	var node ast.Node = k
	if mk, ok := node.(*ast.MappingKeyNode); ok && mk.Value != nil {
		node = mk.Value
	}
	if s, ok := node.(ast.ScalarNode); ok {
		if v, ok := s.GetValue().(string); ok {
			return v
		}
	}
	return node.String()
}

// fieldByTag finds the struct field whose yaml tag names key, looking into
// inlined structs too.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			if inner, ok := fieldByTag(f.Type, key); ok {
				return inner, true
			}
			continue
		}
		if name == key && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
