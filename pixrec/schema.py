"""Column names and file names shared by every stage: one place, so stages cannot drift apart."""

from __future__ import annotations

# --- raw PixelRec layout -------------------------------------------------------------------------
RAW_INTERACTIONS = "interactions.csv"
RAW_ITEMS = "item_info.csv"
RAW_COVERS = "covers"
RAW_TRUTH = "_latent_truth"  # diagnostics written by the synthetic source; no stage reads it

ITEM_ID = "item_id"
USER_ID = "user_id"
TIMESTAMP = "timestamp"
INTERACTION_COLUMNS = (ITEM_ID, USER_ID, TIMESTAMP)

COUNT_COLUMNS = (
    "view_number",
    "comment_number",
    "thumbup_number",
    "share_number",
    "coin_number",
    "favorite_number",
    "barrage_number",
)
TITLE, TAG, DESCRIPTION = "title", "tag", "description"
ITEM_COLUMNS = (ITEM_ID, *COUNT_COLUMNS, TITLE, TAG, DESCRIPTION)

# --- split outputs (data/split/) ------------------------------------------------------------------
TRAIN_FILE, VALID_FILE, TEST_FILE = "train.parquet", "valid.parquet", "test.parquet"
USERS_FILE, ITEMS_FILE = "users.parquet", "items.parquet"
SPLIT_REPORT = "report.json"

USER_IDX = "user_idx"  # int32, 0..n_users-1, row of users.parquet
ITEM_IDX = "item_idx"  # int32, 0..n_items-1, row of items.parquet
TAG_IDX = "tag_idx"  # int32, 0 = empty/unknown tag
COVER_PATH = "cover_path"  # path relative to the raw dir, or null when no file exists
IS_COLD = "is_cold"  # bool: item has no training interaction
FIRST_SEEN = "first_seen"  # int64: timestamp of the item's first interaction (any split)
N_TRAIN = "n_train"  # int32: number of training interactions of the item / user
IS_TEST_USER = "has_test"  # bool: user has a valid and a test interaction

# --- embedding outputs (data/embeddings/<side>/) -----------------------------------------------------
EMB_FILE = "embeddings.npy"  # float32 (n_items, dim), row i = item_idx i
EMB_MASK_FILE = "mask.npy"  # bool (n_items,), True = usable input, False = masked
EMB_META_FILE = "meta.json"

# --- negative-sample outputs: training negatives (data/negatives/) -----------------------------------
TRAIN_NEG_FILE = "train_negatives.npy"  # int32 (epochs, n_train, per_positive)
NEG_META_FILE = "meta.json"
# --- ... and the sampled protocol's candidate sets (data/candidates/) --------------------------------
CAND_USERS_FILE = "sampled_users.npy"  # int32 (n_eval,) user_idx of the sampled-protocol users
CAND_FILE = "sampled_candidates.npy"  # int32 (n_eval, 1 + n_neg); column 0 is the test positive
CAND_META_FILE = "meta.json"

# --- evaluate outputs (data/eval/) ------------------------------------------------------------------
EVAL_RANKS_FILE = "ranks.parquet"  # per user: user_idx, item_idx (target), model, protocol, rank
EVAL_TOP_FILE = "top10.parquet"  # full protocol: model, user_idx, top_items list[int32] (-1 = empty)
EVAL_META_FILE = "meta.json"
EVAL_MODEL, EVAL_PROTOCOL, EVAL_RANK, EVAL_TOP_ITEMS = "model", "protocol", "rank", "top_items"

# --- recommend outputs (data/recommendations/) -------------------------------------------------------
RECS_META_FILE = "meta.json"  # k, the headline model, every model's file and counts (see pixrec.serve)
RECS_SUFFIX = ".parquet"  # <model>.parquet: user_id, rank (1..k), item_id, score; best first per user
REC_RANK, REC_SCORE = "rank", "score"
