//! The head-turn challenge's decision, with no models and no I/O: given what was measured on each
//! frame of a burst (the head's pose, passive liveness, when it was captured) and how alike two
//! frames' faces are, did one live person follow the steps they were given?
//!
//! Every threshold is measured on the shared head-turn bursts of real people (`Rules::default`
//! says which figure each comes from); `tests/headturn.rs` runs the rules on those bursts.

use crate::models::Manifest;
use crate::vision::BoxF;
use crate::vision::embed::Pose;

pub use anonchat_protocol::verify::Step;

/// The sign of the yaw proxy when the head turns this way: the person's left moves the nose
/// toward the right of an unmirrored frame.
fn sign(step: Step) -> f32 {
    match step {
        Step::Left => 1.0,
        Step::Right => -1.0,
    }
}

/// What one frame showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub pose: Pose,
    /// Where the face is in the frame.
    pub face: BoxF,
    /// Passive liveness, P(real), of the frame's face: needed on frontal frames only (real
    /// turned frames score low, so the rules ask nothing of them), so it may be left unmeasured
    /// on the others. A frontal frame without it fails.
    pub live: Option<f32>,
    /// Capture time in ms since the first frame, when the client said.
    pub at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// |yaw| at or below which a face looks at the camera.
    pub frontal: f32,
    /// |yaw| a turn must reach, in the commanded direction...
    pub turned: f32,
    /// ...on this many frames in a row...
    pub hold: usize,
    /// ...with a nose that stands out of the face by at least this many eye distances. A head
    /// that turns by φ narrows by cos φ and moves its nose by depth·tan φ; a flat picture
    /// tilted to narrow the same has (next to) no depth: its shift is perspective alone.
    pub depth: f32,
    /// Cosine to the most frontal frame below which a frame shows someone else.
    pub same_person: f32,
    /// Overlap (IoU) of the face's boxes in two frames in a row below which the face jumped:
    /// another face, somewhere else, cut in.
    pub continuity: f32,
    /// P(real) every frontal frame must reach.
    pub live: f32,
    /// Plausible capture time of the whole burst, first to last frame.
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Default for Rules {
    fn default() -> Self {
        let manifest = Manifest::get();
        Rules {
            // Frontal jitter is ±0.05-0.1 at 70-100 px faces (MODELS.md).
            frontal: 0.1,
            // Casual real turns reach 0.12-0.25 (the real burst's right turn peaks at -0.133,
            // its left at +0.251); the negative burst (a laughing woman who rolls her head)
            // peaks at +0.104 on one frame.
            turned: 0.11,
            hold: 2,
            // Measured against the burst's most frontal frame, on a burst's canvas
            // (`Models::detect_frame`): the real burst's left turn shows 0.69-0.86 (its right
            // turn does not narrow at all); prints of the sample photos tilted ±20°, ±35°, ±50°
            // about their vertical axis, near and far from the camera, mirrored or not, 0.15-0.34
            // and one frame at 0.41 (tests/headturn.rs makes them): it is the hold, two frames in
            // a row, that keeps every print out. Which frame is the most frontal moves these
            // figures a lot (against the real burst's frame 12 instead of its frame 7, the left
            // turn shows 0.37): one real turn is a thin base, and more real bursts should move it.
            depth: 0.35,
            // models.toml says why: one burst's frames score ≥ 0.65, different people ≤ 0.27.
            same_person: manifest.embedder.threshold.unwrap_or(0.45),
            // The shared real bursts, frames 250-400 ms apart, overlap by 0.90 or more (the
            // turn) and 0.65 (the woman rolling her head); 0.3 is a face moving by half its
            // width between two frames.
            continuity: 0.3,
            // The liveness model's own threshold (the pipeline uses the configured
            // LIVENESS_THRESHOLD instead, as it does for photos); real frontal frames score
            // 0.96-1.00.
            live: manifest.liveness.threshold.unwrap_or(0.5),
            // Two deliberate turns take more than a second; a challenge lives for 60 s.
            min_ms: 1_000,
            max_ms: 60_000,
        }
    }
}

/// Why a burst was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("no frames")]
    Empty,
    #[error("look straight at the camera when the capture starts")]
    NotFrontalFirst,
    #[error("{}", missed_message(*.step, *.reached))]
    StepMissed {
        /// Which step, counted from 0.
        index: usize,
        step: Step,
        /// The furthest the head went that way after the previous step (0 if never).
        reached: f32,
    },
    #[error("the face turned like a flat picture, not like a head")]
    Flat { frame: usize },
    #[error("the frames do not all show the same person")]
    NotSamePerson { frame: usize, cosine: f32 },
    #[error("the face jumped from one place to another between two frames")]
    Jumped { frame: usize, iou: f32 },
    #[error("hold still facing the camera in good light")]
    NotLive { frame: usize, live: Option<f32> },
    #[error("the frames' capture times are not plausible")]
    Timing,
}

fn missed_message(step: Step, reached: f32) -> String {
    if reached > 0.0 {
        format!("turn your head further to your {}", step.as_str())
    } else {
        format!("turn your head to your {}", step.as_str())
    }
}

/// The decision on one burst, and the frame the rest of the verification uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Passed {
    /// The most frontal frame: gender is read from it.
    pub frontal: usize,
}

/// Whether the rules ask for this frame's liveness.
pub fn is_frontal(frame: &Frame, rules: &Rules) -> bool {
    frame.pose.yaw.abs() <= rules.frontal
}

/// The most frontal frame (smallest |yaw|, the first of equals).
pub fn most_frontal(frames: &[Frame]) -> Option<usize> {
    (0..frames.len()).min_by(|&a, &b| {
        frames[a]
            .pose
            .yaw
            .abs()
            .total_cmp(&frames[b].pose.yaw.abs())
    })
}

/// Judges a burst: it starts frontal, every commanded step is reached in order and held, the
/// frames the decision rests on show the person of the most frontal frame (`similarity(i, j)`:
/// cosine of frames i and j, asked only against the most frontal frame), frontal frames are
/// live, and the timing is plausible. Checks run cheapest first, so a burst that misses a step
/// costs no embedding.
///
/// The frames compared with the most frontal frame (which gives gender) are the last frame of
/// each step's hold: the ones that prove that this person turned each way. An embedding costs
/// more than all the rest of a frame's checks together (BENCHMARKS.md), and the frames in
/// between decide nothing; every frame must still show its face where the frame before showed
/// it, so that no other face is cut in anywhere.
pub fn judge(
    steps: &[Step],
    frames: &[Frame],
    mut similarity: impl FnMut(usize, usize) -> f32,
    rules: &Rules,
) -> Result<Passed, Refusal> {
    let frontal = most_frontal(frames).ok_or(Refusal::Empty)?;
    if frames[0].pose.yaw.abs() > rules.frontal {
        return Err(Refusal::NotFrontalFirst);
    }
    let mut from = 0;
    // The frames whose face must be the most frontal frame's.
    let mut evidence = Vec::with_capacity(steps.len());
    for (index, &step) in steps.iter().enumerate() {
        from = match reached(step, frames, from, frames[frontal].pose, rules) {
            Ok(end) => {
                evidence.push(end - 1);
                end
            }
            Err(Miss {
                flat: Some(frame), ..
            }) => return Err(Refusal::Flat { frame }),
            Err(Miss { furthest, .. }) => {
                return Err(Refusal::StepMissed {
                    index,
                    step,
                    reached: furthest,
                });
            }
        };
    }
    if let Some(times) = frames.iter().map(|f| f.at_ms).collect::<Option<Vec<_>>>() {
        let increasing = times.windows(2).all(|w| w[0] < w[1]);
        let total = times[times.len() - 1].saturating_sub(times[0]);
        if !increasing || total < rules.min_ms || total > rules.max_ms {
            return Err(Refusal::Timing);
        }
    }
    for (frame, f) in frames.iter().enumerate() {
        if is_frontal(f, rules) && f.live.is_none_or(|l| l < rules.live) {
            return Err(Refusal::NotLive {
                frame,
                live: f.live,
            });
        }
    }
    for (frame, pair) in frames.windows(2).enumerate() {
        let iou = pair[0].face.iou(&pair[1].face);
        if iou < rules.continuity {
            return Err(Refusal::Jumped {
                frame: frame + 1,
                iou,
            });
        }
    }
    for frame in evidence.into_iter().filter(|&i| i != frontal) {
        let cosine = similarity(frontal, frame);
        if cosine < rules.same_person {
            return Err(Refusal::NotSamePerson { frame, cosine });
        }
    }
    Ok(Passed { frontal })
}

/// A step that was not held: how far the head went that way, and the first frame that turned
/// far enough but flat.
struct Miss {
    furthest: f32,
    flat: Option<usize>,
}

/// Where the first hold of `step` at or after frame `from` ends (the index just past it).
fn reached(
    step: Step,
    frames: &[Frame],
    from: usize,
    frontal: Pose,
    rules: &Rules,
) -> Result<usize, Miss> {
    let mut run = 0;
    let mut miss = Miss {
        furthest: 0.0,
        flat: None,
    };
    for (i, f) in frames.iter().enumerate().skip(from) {
        let toward = f.pose.yaw * sign(step);
        miss.furthest = miss.furthest.max(toward);
        let deep = has_depth(f.pose, frontal, step, rules.depth);
        if toward >= rules.turned && !deep {
            miss.flat.get_or_insert(i);
        }
        if toward >= rules.turned && deep {
            run += 1;
            if run >= rules.hold {
                return Ok(i + 1);
            }
        } else {
            run = 0;
        }
    }
    Err(miss)
}

/// Whether the nose moved, since the frontal frame, as far as a head with at least `depth`
/// would move it for the narrowing seen: shift ≥ depth·tan φ where cos φ = width / frontal width.
fn has_depth(pose: Pose, frontal: Pose, step: Step, depth: f32) -> bool {
    let shift = (pose.yaw - frontal.yaw) * sign(step);
    if frontal.width <= 0.0 {
        return false;
    }
    let r = pose.width / frontal.width;
    if r >= 1.0 {
        // No narrowing at all: nothing a flat picture could have faked by tilting.
        return shift > 0.0;
    }
    let tan = (1.0 - r * r).sqrt() / r.max(1e-3);
    shift >= depth * tan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(yaws: &[f32]) -> Vec<Frame> {
        yaws.iter()
            .enumerate()
            .map(|(i, &yaw)| Frame {
                pose: Pose { yaw, width: 1.0 },
                face: BoxF {
                    x: 100.0,
                    y: 80.0,
                    w: 120.0,
                    h: 150.0,
                },
                live: Some(0.99),
                at_ms: Some(i as u64 * 200),
            })
            .collect()
    }
    const SAME: fn(usize, usize) -> f32 = |_, _| 0.9;
    const TURNS: [f32; 10] = [0.0, 0.02, 0.15, 0.2, 0.05, -0.01, -0.14, -0.18, -0.03, 0.0];

    #[test]
    fn steps_in_the_commanded_order_pass() {
        let r = Rules::default();
        let frames = burst(&TURNS);
        let passed = judge(&[Step::Left, Step::Right], &frames, SAME, &r).unwrap();
        assert_eq!(passed.frontal, 0);
        assert_eq!(
            judge(&[Step::Right, Step::Left], &frames, SAME, &r),
            Err(Refusal::StepMissed {
                index: 1,
                step: Step::Left,
                reached: 0.0
            }),
            "right is found, but no left after it"
        );
    }

    #[test]
    fn a_turn_held_for_one_frame_or_too_small_is_missed_and_says_so() {
        let r = Rules::default();
        let flick = burst(&[0.0, 0.3, 0.0, -0.2, -0.2]);
        let err = judge(&[Step::Left, Step::Right], &flick, SAME, &r).unwrap_err();
        assert!(
            matches!(err, Refusal::StepMissed { index: 0, .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "turn your head further to your left");
        let never = burst(&[0.0, -0.05, -0.2, -0.2]);
        let err = judge(&[Step::Left], &never, SAME, &r).unwrap_err();
        assert_eq!(err.to_string(), "turn your head to your left");
    }

    #[test]
    fn a_burst_must_start_frontal_be_one_person_live_and_plausibly_timed() {
        let r = Rules::default();
        let mut turned_first = TURNS.to_vec();
        turned_first[0] = 0.2;
        assert_eq!(
            judge(&[Step::Left, Step::Right], &burst(&turned_first), SAME, &r),
            Err(Refusal::NotFrontalFirst)
        );
        let other = |_: usize, j: usize| if j == 7 { 0.2 } else { 0.9 };
        assert!(matches!(
            judge(&[Step::Left, Step::Right], &burst(&TURNS), other, &r),
            Err(Refusal::NotSamePerson { frame: 7, .. })
        ));
        let mut print = burst(&TURNS);
        print[9].live = Some(0.1);
        assert!(matches!(
            judge(&[Step::Left, Step::Right], &print, SAME, &r),
            Err(Refusal::NotLive { frame: 9, .. })
        ));
        // A turned frame's low liveness is no veto: real turned frames score low.
        let mut turned_low = burst(&TURNS);
        turned_low[3].live = Some(0.1);
        assert!(judge(&[Step::Left, Step::Right], &turned_low, SAME, &r).is_ok());
        // Nor is a turned frame's liveness left unmeasured; a frontal frame's is.
        turned_low[3].live = None;
        assert!(judge(&[Step::Left, Step::Right], &turned_low, SAME, &r).is_ok());
        turned_low[0].live = None;
        assert!(matches!(
            judge(&[Step::Left, Step::Right], &turned_low, SAME, &r),
            Err(Refusal::NotLive { frame: 0, .. })
        ));
        turned_low[0].live = Some(0.99);
        assert!(judge(&[Step::Left, Step::Right], &turned_low, SAME, &r).is_ok());
        let mut fast = burst(&TURNS);
        for (i, f) in fast.iter_mut().enumerate() {
            f.at_ms = Some(i as u64 * 10);
        }
        assert_eq!(
            judge(&[Step::Left, Step::Right], &fast, SAME, &r),
            Err(Refusal::Timing)
        );
        let mut backwards = burst(&TURNS);
        backwards[4].at_ms = Some(0);
        assert_eq!(
            judge(&[Step::Left, Step::Right], &backwards, SAME, &r),
            Err(Refusal::Timing)
        );
        assert_eq!(judge(&[Step::Left], &[], SAME, &r), Err(Refusal::Empty));
    }

    #[test]
    fn a_picture_that_narrows_without_moving_its_nose_is_flat() {
        let r = Rules::default();
        let mut frames = burst(&TURNS);
        // The left turn: nose +0.15 and +0.2 from frontal; narrowing to 0.8 needs a shift of
        // 0.35 · tan(acos 0.8) = 0.26 at least.
        frames[2].pose.width = 0.8;
        frames[3].pose.width = 0.8;
        assert_eq!(
            judge(&[Step::Left, Step::Right], &frames, SAME, &r),
            Err(Refusal::Flat { frame: 2 })
        );
        // Narrowing a little, as a real head turning by 20° does (cos 20° = 0.94), is fine.
        frames[2].pose.width = 0.95;
        frames[3].pose.width = 0.94;
        assert!(judge(&[Step::Left, Step::Right], &frames, SAME, &r).is_ok());
    }

    #[test]
    fn a_face_that_jumps_between_two_frames_is_someone_else_cut_in() {
        let r = Rules::default();
        let mut frames = burst(&TURNS);
        // Moving a little between frames, as a head does, is fine.
        for (i, f) in frames.iter_mut().enumerate() {
            f.face.x += 8.0 * i as f32;
        }
        assert!(judge(&[Step::Left, Step::Right], &frames, SAME, &r).is_ok());
        // A frame in between, which no other rule reads, with a face elsewhere.
        frames[5].face.x += 200.0;
        assert!(matches!(
            judge(&[Step::Left, Step::Right], &frames, SAME, &r),
            Err(Refusal::Jumped { frame: 5, .. })
        ));
        assert_eq!(
            crate::error::VerifyError::from(Refusal::Jumped { frame: 5, iou: 0.0 }),
            crate::error::VerifyError::NotSamePerson
        );
    }

    #[test]
    fn a_missed_step_costs_no_embedding() {
        let mut asked = 0;
        let _ = judge(
            &[Step::Left],
            &burst(&[0.0, 0.0, 0.0]),
            |_, _| {
                asked += 1;
                0.9
            },
            &Rules::default(),
        );
        assert_eq!(asked, 0);
    }

    #[test]
    fn only_the_frames_that_end_each_hold_are_compared_with_the_most_frontal() {
        let mut asked = Vec::new();
        let passed = judge(
            &[Step::Left, Step::Right],
            &burst(&TURNS),
            |i, j| {
                asked.push((i, j));
                0.9
            },
            &Rules::default(),
        )
        .unwrap();
        // Left is held on frames 2-3, right on 6-7; frame 0 is the most frontal.
        assert_eq!(passed.frontal, 0);
        assert_eq!(asked, vec![(0, 3), (0, 7)]);
        // Someone else in a frame that decides nothing does not matter; in one that ends a
        // hold, it does.
        let other = |at: usize| move |_: usize, j: usize| if j == at { 0.2 } else { 0.9 };
        let r = Rules::default();
        assert!(judge(&[Step::Left, Step::Right], &burst(&TURNS), other(5), &r).is_ok());
        assert_eq!(
            judge(&[Step::Left, Step::Right], &burst(&TURNS), other(3), &r),
            Err(Refusal::NotSamePerson {
                frame: 3,
                cosine: 0.2
            })
        );
    }
}
