"""Times the Python reference pipeline (shared/models/reference_check.py, imported, not copied)
on the same photos and stages as examples/bench_verifier.rs: decode, detect, liveness V2, gender.

usage: python3 benches/reference_pipeline.py [ROUNDS] [SHARED_DIR]   (needs onnxruntime numpy pillow)
"""
import importlib.util
import os
import statistics
import sys
import time

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
spec = importlib.util.spec_from_file_location("reference_check", os.path.join(shared, "models", "reference_check.py"))
rc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rc)

import onnxruntime as ort  # noqa: E402

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
models = os.path.join(shared, "models")
det = ort.InferenceSession(os.path.join(models, "face_detection_yunet_2023mar.onnx"), options, providers=["CPUExecutionProvider"])
live = ort.InferenceSession(os.path.join(models, "2.7_80x80_MiniFASNetV2.onnx"), options, providers=["CPUExecutionProvider"])
gen = ort.InferenceSession(os.path.join(models, "dlib_gender_v1.onnx"), options, providers=["CPUExecutionProvider"])
names = ["f_interfaces_001.jpg", "f_pexels_neutral.jpg", "m_bryan_codait_small.png", "m_interfaces_014.jpg",
         "m_luciano_codait.png", "m_obama_official.jpg", "real_f_silentface_T1.jpg"]
paths = [os.path.join(shared, "testdata", "faces", n) for n in names]

stages = {"decode": [], "detect": [], "liveness": [], "gender": [], "total": []}
for _ in range(rounds + 1):
    for p in paths:
        t0 = time.perf_counter()
        rgb = rc.load_rgb(p)
        t1 = time.perf_counter()
        faces = rc.detect_faces(det, rgb)
        t2 = time.perf_counter()
        rc.liveness_real_prob(live, rgb, faces[0]["box"], 2.7)
        t3 = time.perf_counter()
        rc.male_prob(gen, rgb, faces[0]["landmarks"])
        t4 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            stages[k].append(v * 1000)
# drop the first (warm-up) round
stages = {k: v[len(paths):] for k, v in stages.items()}
print("reference pipeline (Python, onnxruntime %s, 1 thread), %d runs" % (ort.__version__, len(stages["total"])))
print("| stage | p50 ms | p95 ms |\n|---|---|---|")
for k, v in stages.items():
    q = statistics.quantiles(v, n=20)
    print("| %s | %.2f | %.2f |" % (k, statistics.median(v), q[18]))
print("single-thread throughput: %.1f images/s" % (len(stages["total"]) / (sum(stages["total"]) / 1000)))
