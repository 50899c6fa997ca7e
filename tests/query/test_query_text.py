"""User text reaches Lucene only as plain words."""

from __future__ import annotations

from wekadocs.query.query_text import content_terms, lucene_query, lucene_words


def test_lucene_syntax_in_a_question_is_neutralised() -> None:
    hostile = 'title:secret OR "unbalanced ( AND text:* ~2 ^9 \\ -x +y && ||'
    query = lucene_query(hostile)
    inner = query.split("(", 1)[1].split(")", 1)[0]
    assert all(word.isalnum() for word in inner.split())
    assert "OR" not in inner and "AND" not in inner and "*" not in query


def test_hyphenated_commands_split_like_the_analyzer() -> None:
    assert lucene_words("weka nfs global-config set --mountd-port") == "weka nfs global config set mountd port"


def test_stop_words_drop_but_meaning_stays() -> None:
    assert content_terms("How do I pin the NFS mountd port?") == ["pin", "nfs", "mountd", "port"]
    assert lucene_query("how do I") == ""
