package build

import (
	"errors"
	"fmt"
)

// Error is a problem in a Buildfile, located at a line so the user can find it.
type Error struct {
	File        string // display name of the Buildfile
	Line        int    // 1-based; 0 when the error has no line
	Instruction string // e.g. "COPY"; empty for file-level errors
	Err         error
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Instruction != "" {
		return fmt.Sprintf("%s: %s: %v", loc, e.Instruction, e.Err)
	}
	return fmt.Sprintf("%s: %v", loc, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// errAt attaches a Buildfile location to err unless it already carries one.
func errAt(file string, line int, instr string, err error) error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	return &Error{File: file, Line: line, Instruction: instr, Err: err}
}
