// Package layers holds one test: that the module's packages import each
// other only downwards, as docs and shared/DESIGN.md draw the layers. It
// has no code of its own.
package layers
