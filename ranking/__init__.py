"""Ranking: scorers that turn candidate pairs into each member's ordered top K (recs/topk rows).

Why a room of its own: the scorer changes on its own schedule (the heuristic today, a trained model
later) behind one output contract, while candidate generation and the push stay as they are.
"""
