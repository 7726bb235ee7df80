//go:build !amd64

package runtime

// x32Usable: the x32 ABI exists only on amd64 kernels, where its filter is decided.
func x32Usable() bool { return true }
