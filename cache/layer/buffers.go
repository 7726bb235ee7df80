package layer

import "sync"

// copyBufSize is large so that copying a file costs few syscalls and compressor calls.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }
