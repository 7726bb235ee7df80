package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	units "github.com/docker/go-units"
)

// Environment variables that raise the decompression limits (see Limits).
const (
	MaxSizeEnv  = "KILN_LAYER_MAX_SIZE"  // e.g. "200g"; "0" = no limit
	MaxRatioEnv = "KILN_LAYER_MAX_RATIO" // e.g. "1000"; "0" = no limit
)

// ErrTooLarge reports a layer that expands past the decompression limits.
var ErrTooLarge = errors.New("layer exceeds the decompression limit")

// Limits bound what one layer blob may expand to, so a small hostile blob (6 MB of gzip
// can hold 6 GiB of zeros) cannot fill the disk. The ratio counts only past RatioAfter, so
// a genuine layer with a large run of zeros still unpacks.
type Limits struct {
	MaxSize    int64 // uncompressed bytes of one layer; 0 = no limit
	MaxRatio   int64 // uncompressed ÷ compressed bytes allowed once RatioAfter is passed; 0 = no limit
	RatioAfter int64 // uncompressed bytes before the ratio applies
}

// DefaultLimits are the limits without environment overrides: 1 TiB, and 100× past 1 GiB.
var DefaultLimits = Limits{MaxSize: 1 << 40, MaxRatio: 100, RatioAfter: 1 << 30}

// LimitsFromEnv is DefaultLimits with KILN_LAYER_MAX_SIZE and KILN_LAYER_MAX_RATIO applied.
func LimitsFromEnv() (Limits, error) {
	l := DefaultLimits
	if v := os.Getenv(MaxSizeEnv); v != "" {
		n, err := units.RAMInBytes(v)
		if err != nil || n < 0 {
			return l, fmt.Errorf("invalid %s=%q: use a size such as 200g, or 0 for no limit", MaxSizeEnv, v)
		}
		l.MaxSize = n
	}
	if v := os.Getenv(MaxRatioEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return l, fmt.Errorf("invalid %s=%q: use a whole number such as 1000, or 0 for no limit", MaxRatioEnv, v)
		}
		l.MaxRatio = n
	}
	return l, nil
}

// limitReader fails the uncompressed stream once it breaks the limits.
type limitReader struct {
	r    io.Reader
	in   *countingReader // the compressed bytes read so far
	out  int64
	lim  Limits
	fail error // sticky
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.fail != nil {
		return 0, l.fail
	}
	n, err := l.r.Read(p)
	l.out += int64(n)
	switch {
	case l.lim.MaxSize > 0 && l.out > l.lim.MaxSize:
		l.fail = fmt.Errorf("%w: it expands to more than %s; if the layer is genuine, raise %s (e.g. %s=2t; 0 = no limit)",
			ErrTooLarge, units.BytesSize(float64(l.lim.MaxSize)), MaxSizeEnv, MaxSizeEnv)
	case l.lim.MaxRatio > 0 && l.out > l.lim.RatioAfter && l.out > l.lim.MaxRatio*max(l.in.n, 1):
		l.fail = fmt.Errorf("%w: %s of compressed data expanded to more than %s (over %d×), which looks like a decompression bomb; if the layer is genuine, raise %s (0 = no limit)",
			ErrTooLarge, units.BytesSize(float64(l.in.n)), units.BytesSize(float64(l.out)), l.lim.MaxRatio, MaxRatioEnv)
	}
	if l.fail != nil {
		return n, l.fail
	}
	return n, err
}
