// Package render prints what the offline commands found: eval's outcomes, explain's
// explanation and inventory's table, as text for people or JSON for tools.
package render
