"""One-off measurements behind claims in assets/models/README.md; not steps of
`bias-mirror-export all`, and nothing the shipped bundles depend on. The question each answered,
and the answer (the README has the numbers):

- `lever`: how far does each resampling setting (rule, temperature, cap) move the groups among
  the faces a trained DB-VAE draws? Not far: no setting without labels gets the White share of
  an 80 % White recipe much below 68 % ("Resampling lever").
- `luminance`: is the gap on darker-skinned test faces about brightness? No: with every photo's
  luminance equalized no group's recall moves by more than 3.3 points.
- `int8_fidelity`: which calibration set keeps the int8 face logit closest to the float one?
  400 training crops under the training augmentation, which the exporter now uses.

- `wild_faces`: are in-the-wild training faces the limit of in-the-wild recall? Yes: half A of
  wider-demog's photos added to training lifts half B's recall by 10-14 points at every framing
  (one seed), more than any augmentation, resampling or encoder setting did.
- `resolution`: is the 64x64 input the limit at face fraction 0.5? No: a face that fills the
  crop with 32 pixels of detail is found more often than with 64, and 9.5 points (balanced
  model) more often than the same face at 0.5: its surroundings are what the models miss.
- `covered`: do the models take a person's surroundings for a face? Half B's crops at f = 0.5
  with the face covered (by an object, or flat), and each crop's corners: the README has the
  shares per bundle; the corners hold too many other people's faces to set a threshold on.
- `per_seed`: did a training setting help, seed by seed? Two runs' bundles side by side from
  their cards (same seed: same start and draws, so paired). The cosine schedule, log-uniform
  framings and a doubled learning rate did not (sweeps of 2026-12-07), nor did mined or more
  non-faces (`--nonface-draw mined` / `pool`, seed 0: both models lost 1-6 points), nor
  dropout before the classifier (`--dropout 0.5`, balanced seed 0: 4.8 points fewer at 0.5).
  With `--wider-train-share` it drew a learning curve over in-the-wild training faces: the
  balanced model's seeds disagree (+3.8 and -2.0 points per doubling at f = 0.5); the
  baseline's, trained again after a defect voided the first (`--sides baseline`), rises on
  both (+6.2 and +4.6), toward 0.85 only at tens of thousands of such faces.
- `crossfit`: does the recipe's narrowing of the gap hold on all of wider-demog? The recipe
  trained on half B (`--wider-train-half B`) judges half A, the shipped recipe half B: each face
  by models that never saw its photo, each half alone and pooled (re-check of 2026-12-07).
- `averaging`: does the mean of a run's last epochs' weights (stochastic weight averaging)
  find more in-the-wild faces than its last weights? Yes: the balanced model 3.6 points more
  at f = 0.5 on one seed; 4.4 over three with `--average-last 5`, which still did not ship (its
  seed-0 model fires on 9 of 100 LFW background patches).
- `passing`: are the non-faces that set the 2 % threshold mislabelled faces? No: of the 40
  that pass each shipped model, 8-12 show a face of some kind; with all of them out of the set
  the balanced model's lowest cell at f = 0.5 would be 0.81, not 0.80. The models use colour
  (in grey they find 9-17 points fewer faces).

Each runs as `python -m model_export.diagnostics.<name> --help`.
"""
