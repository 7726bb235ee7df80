package container

import (
	"math/rand/v2"
	"regexp"
	"strconv"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validName is docker's rule for container names.
func validName(n string) bool { return len(n) <= 128 && nameRE.MatchString(n) }

var (
	adjectives = []string{"admiring", "brave", "calm", "clever", "eager", "focused", "gentle", "happy",
		"jolly", "keen", "lucid", "merry", "nifty", "quirky", "serene", "sharp", "stoic", "vibrant", "wizardly", "zen"}
	nouns = []string{"babbage", "curie", "darwin", "euclid", "fermat", "galois", "hopper", "hypatia",
		"kepler", "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing"}
)

// freeName picks a docker-style adjective_noun name no listed container uses, adding a number
// when the plain names run out.
func freeName(taken []*Container) string {
	used := map[string]bool{}
	for _, c := range taken {
		used[c.Name] = true
	}
	for i := 0; ; i++ {
		n := adjectives[rand.IntN(len(adjectives))] + "_" + nouns[rand.IntN(len(nouns))]
		if i >= 10 {
			n += strconv.Itoa(rand.IntN(1000))
		}
		if !used[n] {
			return n
		}
	}
}
