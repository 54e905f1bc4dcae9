// Package docs holds the test that compiles the Go snippets of README.md
// and docs/*.md: a snippet in the documentation that does not build is a
// bug, as a failing example would be.
package docs
