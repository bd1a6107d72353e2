package report_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemaKeywords are the JSON Schema keywords report.schema.json may use:
// the ones validate understands, plus annotations.
var schemaKeywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$ref": true, "title": true, "description": true,
	"type": true, "enum": true, "minimum": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true,
}

// validate checks v against the subset of JSON Schema (2020-12) that
// report.schema.json uses, and returns every violation.
func validate(root, s map[string]any, v any, path string) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: unresolved $ref %s", path, ref)}
		}
		return validate(root, def, v, path)
	}
	var errs []string
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			return []string{fmt.Sprintf("%s: %T %v is not %v", path, v, v, types)}
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v not in %v", path, v, enum))
	}
	if min, ok := s["minimum"].(float64); ok {
		if f, ok := v.(float64); ok && f < min {
			errs = append(errs, fmt.Sprintf("%s: %v < minimum %v", path, f, min))
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required %q missing", path, r))
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					errs = append(errs, fmt.Sprintf("%s: %q is not in the schema", path, k))
				}
				continue
			}
			errs = append(errs, validate(root, ps, obj[k], path+"."+k)...)
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, validate(root, items, x, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	}
	return false
}

// checkSchema walks the schema itself: only keywords the validator
// checks, a description on every property, no object open to undocumented
// fields.
func checkSchema(t *testing.T, s map[string]any, path string) {
	for k, v := range s {
		if !schemaKeywords[k] {
			t.Errorf("schema %s: keyword %q is not checked by the test's validator", path, k)
		}
		switch k {
		case "properties", "$defs":
			for name, sub := range v.(map[string]any) {
				m := sub.(map[string]any)
				if k == "properties" && m["description"] == nil {
					t.Errorf("schema %s.%s has no description", path, name)
				}
				checkSchema(t, m, path+"."+name)
			}
		case "items":
			checkSchema(t, v.(map[string]any), path+"[]")
		}
	}
	if s["type"] == "object" && s["properties"] != nil && s["additionalProperties"] != false {
		t.Errorf("schema %s: objects must set additionalProperties false, so that no field goes undocumented", path)
	}
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("report.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("report.schema.json: %v", err)
	}
	return s
}

func TestReportMatchesSchema(t *testing.T) {
	schema := loadSchema(t)
	checkSchema(t, schema, "$")
	b, err := json.Marshal(testReport(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range validate(schema, schema, doc, "$") {
		t.Error(e)
	}

	// The validator must catch what it claims to: a wrong type, a missing
	// required field, an undocumented one.
	m := doc.(map[string]any)
	m["threads"] = "7"
	delete(m, "issues")
	m["surprise"] = true
	m["sources"].([]any)[0].(map[string]any)["format"] = "xml"
	errs := strings.Join(validate(schema, schema, m, "$"), "\n")
	for _, want := range []string{"$.threads: string", `required "issues" missing`, `"surprise" is not in the schema`, "$.sources[0].format: xml not in"} {
		if !strings.Contains(errs, want) {
			t.Errorf("validating a broken report: no error %q in\n%s", want, errs)
		}
	}
}
