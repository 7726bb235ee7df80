package build

import v1 "github.com/google/go-containerregistry/pkg/v1"

// op is the executable part of a vertex; each kind lives in its own file.
type op interface{ opKind() OpKind }

// sourceOp provides a base image's layers.
type sourceOp struct {
	ref   string
	image v1.Image
}

// mkdirOp creates a WORKDIR when it does not exist yet.
type mkdirOp struct {
	path string
	user string
}

func (*sourceOp) opKind() OpKind { return SourceOp }
func (*copyOp) opKind() OpKind   { return CopyOp }
func (*mkdirOp) opKind() OpKind  { return MkdirOp }
func (*execOp) opKind() OpKind   { return ExecOp }
