package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// guidePath is the extension authors' guide, whose code blocks are
// excerpts of this example.
const guidePath = "../../docs/extensions.md"

// excerpt is the code between "// guide:begin NAME" and "// guide:end
// NAME" in a source file of the example, without its common indentation
// and trailing blank lines.
type excerpt struct {
	file, lang, code string
}

var (
	beginRE = regexp.MustCompile(`^\s*// guide:begin (\S+)$`)
	endRE   = regexp.MustCompile(`^\s*// guide:end (\S+)$`)
	fenceRE = regexp.MustCompile("^```(\\w*)$")
	markRE  = regexp.MustCompile(`^<!-- guide: (\S+) -->$`)
	linkRE  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
)

// excerpts reads the excerpts of the files.
func excerpts(files []string) (map[string]excerpt, error) {
	out := map[string]excerpt{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		lang := map[string]string{".go": "go", ".mjs": "js"}[filepath.Ext(f)]
		var name string
		var body []string
		for i, line := range strings.Split(string(b), "\n") {
			if m := beginRE.FindStringSubmatch(line); m != nil {
				if name != "" {
					return nil, fmt.Errorf("%s:%d: guide:begin %s inside %s", f, i+1, m[1], name)
				}
				if _, dup := out[m[1]]; dup {
					return nil, fmt.Errorf("%s:%d: a second excerpt %s", f, i+1, m[1])
				}
				name, body = m[1], nil
				continue
			}
			if m := endRE.FindStringSubmatch(line); m != nil {
				if m[1] != name {
					return nil, fmt.Errorf("%s:%d: guide:end %s, but %q is open", f, i+1, m[1], name)
				}
				out[name] = excerpt{file: f, lang: lang, code: dedent(body)}
				name = ""
				continue
			}
			if name != "" {
				body = append(body, line)
			}
		}
		if name != "" {
			return nil, fmt.Errorf("%s: guide:begin %s is never ended", f, name)
		}
	}
	return out, nil
}

// dedent joins lines without their trailing blank lines and the
// indentation they all share.
func dedent(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " \t")); indent < 0 || n < indent {
			indent = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= indent {
			out[i] = l[max(indent, 0):]
		}
	}
	return strings.Join(out, "\n")
}

// block is a fenced code block of the guide.
type block struct {
	line             int
	name, lang, code string
}

// guideBlocks returns the fenced blocks of the Markdown text md, each with
// the name of the <!-- guide: NAME --> line just before it ("" if none).
func guideBlocks(md string) ([]block, error) {
	lines := strings.Split(md, "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		b := block{line: i + 1, lang: m[1]}
		if i > 0 {
			if mk := markRE.FindStringSubmatch(lines[i-1]); mk != nil {
				b.name = mk[1]
			}
		}
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("line %d: a code block that never ends", i+1)
		}
		b.code = strings.Join(lines[i+1:end], "\n")
		out = append(out, b)
		i = end
	}
	return out, nil
}

// Every code block of the guide is an excerpt of the example, as it is in
// the source; every excerpt marked in the source is in the guide.
func TestGuideExcerpts(t *testing.T) {
	md, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			sources = append(sources, f)
		}
	}
	ex, err := excerpts(append(sources, "client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := guideBlocks(string(md))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) < 10 {
		t.Fatalf("the guide has %d code blocks", len(blocks))
	}
	used := map[string]bool{}
	for _, b := range blocks {
		e, ok := ex[b.name]
		switch {
		case b.name == "":
			t.Errorf("%s:%d: a code block without <!-- guide: NAME --> before it: every block is an excerpt", guidePath, b.line)
		case !ok:
			t.Errorf("%s:%d: no excerpt %q in the example's sources", guidePath, b.line, b.name)
		case b.lang != e.lang:
			t.Errorf("%s:%d: excerpt %s is %s (%s), the block says %q", guidePath, b.line, b.name, e.lang, e.file, b.lang)
		case b.code != e.code:
			t.Errorf("%s:%d: block %s differs from %s:\n--- guide ---\n%s\n--- source ---\n%s", guidePath, b.line, b.name, e.file, b.code, e.code)
		}
		used[b.name] = true
	}
	for name, e := range ex {
		if !used[name] {
			t.Errorf("%s marks excerpt %s, which the guide does not show", e.file, name)
		}
	}
}

// The guide's relative links name files that exist.
func TestGuideLinks(t *testing.T) {
	md, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range linkRE.FindAllStringSubmatch(string(md), -1) {
		target, _, _ := strings.Cut(m[1], "#")
		if strings.Contains(target, "://") || target == "" {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(filepath.Dir(guidePath), target)); err != nil {
			t.Errorf("link %s: %v", m[1], err)
		}
	}
	if n == 0 {
		t.Fatal("no relative link found: the pattern is wrong")
	}
}

func TestExcerptParsing(t *testing.T) {
	tests := []struct {
		src  string
		want map[string]string
		err  bool
	}{
		{"x\n\t// guide:begin a\n\tfunc f() {\n\t\treturn\n\t}\n\n\t// guide:end a\n", map[string]string{"a": "func f() {\n\treturn\n}"}, false},
		{"// guide:begin a\n// guide:begin b\n", nil, true},
		{"// guide:begin a\nx\n// guide:end b\n", nil, true},
		{"// guide:begin a\nx\n", nil, true},
		{"// guide:begin a\nx\n// guide:end a\n// guide:begin a\ny\n// guide:end a\n", nil, true},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		f := filepath.Join(dir, fmt.Sprintf("f%d.go", i))
		if err := os.WriteFile(f, []byte(tt.src), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := excerpts([]string{f})
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.src, err)
			continue
		}
		for name, code := range tt.want {
			if got[name].code != code || got[name].lang != "go" {
				t.Errorf("%q: excerpt %s = %+v, want %q", tt.src, name, got[name], code)
			}
		}
	}
	blocks, err := guideBlocks("text\n<!-- guide: a -->\n```go\nx\n```\n\n```js\ny\n```\n")
	if err != nil || len(blocks) != 2 || blocks[0].name != "a" || blocks[0].code != "x" || blocks[1].name != "" || blocks[1].lang != "js" {
		t.Fatalf("guideBlocks: %+v, %v", blocks, err)
	}
	if _, err := guideBlocks("```go\nnever ends\n"); err == nil {
		t.Fatal("an unended block was accepted")
	}
}
