package config

import (
	"encoding"
	"reflect"
	"strconv"
	"strings"

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

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// scalarErrors walks the document and the Go type side by side and tries
// every scalar that lands in a TextUnmarshaler (durations, sizes, rates,
// prefixes, modes), so that each bad value is reported at its own line,
// all of them at once. The YAML library returns such errors without a
// position.
func scalarErrors(node ast.Node, t reflect.Type, path string, report func(path string, line int, err error)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	node = unwrap(node)
	if node == nil {
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		if s, ok := node.(ast.ScalarNode); ok && node.Type() != ast.NullType {
			v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
			if err := v.UnmarshalText([]byte(scalarText(s))); err != nil {
				report(path, node.GetToken().Position.Line, err)
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		eachPair(node, func(key string, value ast.Node) {
			if ft, ok := blockType(t, key); ok {
				scalarErrors(value, ft, join(path, key), report)
			}
		})
	case reflect.Map:
		eachPair(node, func(key string, value ast.Node) {
			scalarErrors(value, t.Elem(), join(path, key), report)
		})
	case reflect.Slice, reflect.Array:
		if seq, ok := node.(*ast.SequenceNode); ok {
			for i, v := range seq.Values {
				scalarErrors(v, t.Elem(), path+"["+strconv.Itoa(i)+"]", report)
			}
		}
	}
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
