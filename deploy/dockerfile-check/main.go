// Command dockerfile-check parses a Dockerfile with BuildKit's own parser and linter (the code
// `docker build` runs), for one set of build arguments, and checks what a build would resolve:
// every instruction is known, no lint rule fires, the final stage's FROM names an image or an
// earlier stage once the global ARGs are expanded, and every COPY --from names an earlier stage.
// It prints the stages the build would run, so a reader sees what two variants share.
//
//	go run . ../runner.Dockerfile TORCH=cuda
//
// It builds nothing: scripts/build-images.sh does that where buildah is installed.
package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-check DOCKERFILE [NAME=VALUE ...]")
		os.Exit(2)
	}
	if err := check(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "dockerfile-check: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func check(path string, overrides []string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return err
	}
	var problems []string
	for _, w := range res.Warnings {
		problems = append(problems, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return err
	}
	if len(stages) == 0 {
		return fmt.Errorf("no FROM")
	}

	args, err := buildArgs(metaArgs, overrides)
	if err != nil {
		return err
	}
	lex := shell.NewLex(res.EscapeToken)
	index := map[string]int{} // stage name -> position
	bases := make([]string, len(stages))
	for i, st := range stages {
		base, _, err := lex.ProcessWord(st.BaseName, shell.EnvsFromSlice(args))
		if err != nil {
			return fmt.Errorf("stage %d: FROM %s: %v", i, st.BaseName, err)
		}
		bases[i] = strings.ToLower(base)
		if st.Name != "" {
			index[strings.ToLower(st.Name)] = i
		}
		for _, cmd := range st.Commands {
			if cp, ok := cmd.(*instructions.CopyCommand); ok && cp.From != "" {
				if j, ok := index[strings.ToLower(cp.From)]; !ok || j >= i {
					problems = append(problems, fmt.Sprintf("stage %q: COPY --from=%s names no earlier stage", st.Name, cp.From))
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	fmt.Printf("%s %s: %s\n", path, strings.Join(overrides, " "), chain(stages, bases, index, len(stages)-1))
	return nil
}

// buildArgs is the global ARG defaults with NAME=VALUE overrides; an override must name a
// declared ARG, as a misspelled --build-arg would silently build the default.
func buildArgs(meta []instructions.ArgCommand, overrides []string) ([]string, error) {
	values := map[string]string{}
	for _, a := range meta {
		for _, kv := range a.Args {
			if kv.Value != nil {
				values[kv.Key] = *kv.Value
			} else {
				values[kv.Key] = ""
			}
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if _, declared := values[k]; !ok || !declared {
			return nil, fmt.Errorf("build argument %q: expected NAME=VALUE with NAME a global ARG", o)
		}
		values[k] = v
	}
	out := make([]string, 0, len(values))
	for k, v := range values {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// chain describes the stages a build of stage i runs: its FROM chain down to an image, and the
// chains of the stages it copies from.
func chain(stages []instructions.Stage, bases []string, index map[string]int, i int) string {
	name := stages[i].Name
	if name == "" {
		name = fmt.Sprintf("stage %d", i)
	}
	desc := name
	if j, ok := index[bases[i]]; ok && j < i {
		desc += " <- " + chain(stages, bases, index, j)
	} else {
		desc += " <- image " + bases[i]
	}
	seen := map[string]bool{}
	for _, cmd := range stages[i].Commands {
		if cp, ok := cmd.(*instructions.CopyCommand); ok && cp.From != "" && !seen[strings.ToLower(cp.From)] {
			seen[strings.ToLower(cp.From)] = true
			desc += " [copies from " + chain(stages, bases, index, index[strings.ToLower(cp.From)]) + "]"
		}
	}
	return desc
}
