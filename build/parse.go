package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// File is a parsed Buildfile: its stages in order and the ARGs declared before the first FROM.
type File struct {
	Name        string // display name used in errors, e.g. "Buildfile"
	Stages      []Stage
	MetaArgs    []instructions.ArgCommand
	EscapeToken rune
	Warnings    []string

	lines       []string       // the text, for the source of build checks
	checkConfig *linter.Config // the "# check=" directive
	parsed      []parsedCheck  // rules the instructions parser found, for the checker
}

// Stage is one FROM section of a Buildfile.
type Stage struct {
	Index        int
	Name         string // the AS name, lower-cased; empty when unnamed
	BaseName     string // the FROM operand before ARG expansion
	Platform     string // the FROM --platform operand before expansion
	Line         int
	Source       string // the FROM line as written
	Instructions []Instruction

	origCmd  string        // "FROM" as written, for the casing check
	loc      []parserRange // the FROM line's range
	comments []string      // the comment lines right above FROM
}

// Instruction is one typed instruction of a stage with the text it came from.
type Instruction struct {
	Line    int
	Source  string // the instruction as written (continuations joined)
	Command instructions.Command
}

// Parse reads a Buildfile with BuildKit's parser and converts it to typed stages.
// name is used only to locate errors ("Buildfile:7: ...").
func Parse(name string, r io.Reader) (*File, error) {
	dt, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return nil, errAt(name, errLine(err), "", cleanParseErr(err))
	}
	f := &File{Name: name, EscapeToken: res.EscapeToken, lines: strings.Split(strings.ReplaceAll(string(dt), "\r\n", "\n"), "\n")}
	if f.checkConfig, err = parseCheckDirective(name, dt); err != nil {
		return nil, err
	}
	for _, w := range res.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			f.parsed = append(f.parsed, parsedCheck{rule: linter.RuleNoEmptyContinuation.Name,
				message: linter.RuleNoEmptyContinuation.Format(), loc: []parserRange{*w.Location}})
			continue
		}
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		f.Warnings = append(f.Warnings, fmt.Sprintf("%s:%d: %s", name, line, w.Short))
	}
	for _, node := range res.AST.Children {
		if err := f.add(node); err != nil {
			return nil, err
		}
	}
	if len(f.Stages) == 0 {
		return nil, errAt(name, 0, "", errors.New("no FROM instruction: a Buildfile must start with FROM (or ARG then FROM)"))
	}
	return f, nil
}

func (f *File) add(node *parser.Node) error {
	instr := strings.ToUpper(node.Value)
	parsed, err := instructions.ParseInstructionWithLinter(node, f.recorder(node.PrevComment))
	if err != nil {
		return errAt(f.Name, node.StartLine, instr, cleanParseErr(err))
	}
	switch c := parsed.(type) {
	case *instructions.Stage:
		f.Stages = append(f.Stages, Stage{
			Index: len(f.Stages), Name: c.Name, BaseName: c.BaseName, Platform: c.Platform,
			Line: node.StartLine, Source: node.Original, origCmd: c.OrigCmd, loc: c.Location, comments: c.Comments,
		})
	case *instructions.ArgCommand:
		if len(f.Stages) == 0 {
			f.MetaArgs = append(f.MetaArgs, *c)
			return nil
		}
		f.appendInstr(node, c)
	case instructions.Command:
		if len(f.Stages) == 0 {
			return errAt(f.Name, node.StartLine, instr, errors.New("only ARG may come before the first FROM"))
		}
		f.appendInstr(node, c)
	default:
		return errAt(f.Name, node.StartLine, instr, fmt.Errorf("unsupported instruction type %T", parsed))
	}
	return nil
}

func (f *File) appendInstr(node *parser.Node, c instructions.Command) {
	st := &f.Stages[len(f.Stages)-1]
	st.Instructions = append(st.Instructions, Instruction{Line: node.StartLine, Source: node.Original, Command: c})
}

// errLine digs the first line number out of a BuildKit location error.
func errLine(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) {
		for _, locs := range le.Locations {
			for _, r := range locs {
				if r.Start.Line > 0 {
					return r.Start.Line
				}
			}
		}
	}
	return 0
}

// cleanParseErr drops BuildKit's location wrapper so the message is not repeated with our own.
func cleanParseErr(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && le.Unwrap() != nil {
		return errors.New(strings.TrimSpace(le.Unwrap().Error()))
	}
	return err
}

// parserRange is BuildKit's source range, aliased to keep signatures short.
type parserRange = parser.Range
