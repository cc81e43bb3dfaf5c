"""The embedded sample dataset: a seeded, procedural stand-in for a shop-produce competition.

Modules, bottom up: `canvas` (drawing primitives), `draw` (one painter per produce
family), `groups` (product codes and their looks), `scene` (backgrounds, packaging,
camera), `defects` (what is injected into train), `plan` (which image is what),
`demo_review` (the demo review session), `generate` (render and write everything).
"""
