// Package build turns a Buildfile (Dockerfile syntax) into a graph of steps and solves it.
//
// Parse reads the file with BuildKit's parser and instructions packages, Plan expands it into a
// Graph of vertices with content-based cache keys, and Solve executes the vertices the cache
// cannot answer, writing layers and the final image into the cache.Store. Base images come in
// through the Resolver interface so that this package never depends on the registry.
package build
