// Package build turns a Buildfile (Dockerfile syntax) into a graph of steps and solves it.
//
// Parse reads the file with BuildKit's parser and instructions packages, Plan expands it into a
// Graph of vertices with content-based cache keys, and Solve executes the vertices the cache
// cannot answer, writing layers and the final image into the cache.Store. While planning,
// BuildKit's build-check rules (its linter package) run where BuildKit's dockerfile2llb runs
// them; RunChecks plans for the checks alone (kiln build --check). Base images come in
// through the Resolver interface so that this package never depends on the registry.
package build
