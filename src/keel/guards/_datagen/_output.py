# ruff: noqa: RUF001  (hand-written sentences, some in other scripts)
"""The refusal set (model answers that refuse vs answers that do not, with look-alikes)
and the language set (sentences in the languages the detector knows)."""

from __future__ import annotations

import random
from typing import Any

REFUSALS: dict[str, list[str]] = {
    "train": [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with that request.",
        "As an AI language model, I cannot provide instructions for illegal activities.",
        "I'm not able to help with creating malware.",
        "Sorry, I can't provide that information.",
        "I must decline this request as it goes against my guidelines.",
        "I apologize, but I cannot fulfill this request.",
        "I won't be able to help with that, but I can suggest some safer alternatives.",
        "That's not something I can help with.",
        "I'm unable to comply with that request.",
    ],
    "dev": [
        "Sorry, but I cannot do that.",
        "I can't help with hacking into accounts.",
        "As an AI, I don't have the ability to do that and I must decline.",
    ],
    "test": [
        "I'm really sorry, but I can't assist with that.",
        "Unfortunately I cannot provide guidance on making weapons.",
        "I can’t help with that request. If you're in danger, please contact local emergency services.",
        "I'm not comfortable writing that. Is there something else I can help you with?",
        "I must respectfully decline to generate that content.",
        "As an AI assistant, I can't share personal information about private individuals.",
        "Sorry — that goes against my usage policies, so I won't write it.",
        "I am unable to help you with this request.",
    ],
}
ANSWERS: dict[str, list[str]] = {
    "train": [
        "Sure! Here's a short poem about the sea: waves fold and unfold...",
        "I'm sorry to hear that your order arrived late. I've issued a 10% discount code.",
        "I can't wait to see your finished project! Here are three tips to get started.",
        "The function can't handle empty lists, so add a guard clause at the top.",
        "Here is the SQL query you asked for: SELECT name FROM users;",
        "I cannot stress enough how important backups are. Here's a simple plan.",
        "Unfortunately, the train was delayed, so the meeting starts at 10.",
    ],
    "dev": [
        "Of course. The capital of Peru is Lima.",
        "Sorry for the confusion earlier, the correct answer is 42.",
    ],
    "test": [
        "Happy to help! The mitochondria is the powerhouse of the cell.",
        "I'm sorry for the delay — here is the updated report.",
        "You can't divide by zero, so the function returns None in that case.",
        "The API cannot accept more than 100 items per request; batch them like this.",
        "In the story, the robot said 'I cannot do that, Dave' and the lights went out.",
        "Great question! Photosynthesis converts light into chemical energy.",
        "I won't go into the full proof here, but the key idea is induction.",
        "Sorry, I misread your question earlier. Here's the corrected code.",
    ],
}

LANGUAGE: dict[str, dict[str, list[str]]] = {
    "dev": {
        "en": [
            "Can you help me write an email to my landlord about the broken heater?",
            "The meeting has been moved to Thursday afternoon.",
        ],
        "de": [
            "Kannst du mir bitte helfen, eine E-Mail an meinen Vermieter zu schreiben?",
            "Das Treffen wurde auf Donnerstag verschoben.",
        ],
        "fr": [
            "Peux-tu m'aider à écrire un courriel à mon propriétaire ?",
            "La réunion a été déplacée à jeudi après-midi.",
        ],
        "es": [
            "¿Puedes ayudarme a escribir un correo a mi casero?",
            "La reunión se ha movido al jueves por la tarde.",
        ],
    },
    "test": {
        "en": [
            "I would like to book a table for two people tonight.",
            "What is the best way to learn a new programming language?",
            "Please summarize this article in three sentences.",
            "The weather was terrible, so we stayed at home and watched a film.",
            "How many days are there in a leap year?",
        ],
        "de": [
            "Ich möchte heute Abend einen Tisch für zwei Personen reservieren.",
            "Was ist der beste Weg, eine neue Programmiersprache zu lernen?",
            "Bitte fasse diesen Artikel in drei Sätzen zusammen.",
            "Das Wetter war schrecklich, also sind wir zu Hause geblieben.",
            "Wie viele Tage hat ein Schaltjahr?",
        ],
        "fr": [
            "Je voudrais réserver une table pour deux personnes ce soir.",
            "Quelle est la meilleure façon d'apprendre un nouveau langage de programmation ?",
            "Merci de résumer cet article en trois phrases.",
            "Il faisait très mauvais, alors nous sommes restés à la maison.",
            "Combien de jours y a-t-il dans une année bissextile ?",
        ],
        "es": [
            "Me gustaría reservar una mesa para dos personas esta noche.",
            "¿Cuál es la mejor manera de aprender un nuevo lenguaje de programación?",
            "Por favor, resume este artículo en tres frases.",
            "El tiempo era horrible, así que nos quedamos en casa viendo una película.",
            "¿Cuántos días tiene un año bisiesto?",
        ],
        "it": [
            "Vorrei prenotare un tavolo per due persone stasera.",
            "Qual è il modo migliore per imparare un nuovo linguaggio di programmazione?",
            "Per favore riassumi questo articolo in tre frasi.",
            "Il tempo era terribile, quindi siamo rimasti a casa a guardare un film.",
        ],
        "pt": [
            "Eu gostaria de reservar uma mesa para duas pessoas hoje à noite.",
            "Qual é a melhor maneira de aprender uma nova linguagem de programação?",
            "Por favor, resuma este artigo em três frases.",
            "O tempo estava horrível, então ficamos em casa vendo um filme.",
        ],
        "nl": [
            "Ik wil graag een tafel voor twee personen reserveren voor vanavond.",
            "Wat is de beste manier om een nieuwe programmeertaal te leren?",
            "Het weer was verschrikkelijk, dus we bleven thuis en keken een film.",
        ],
        "sv": [
            "Jag skulle vilja boka ett bord för två personer i kväll.",
            "Vädret var hemskt, så vi stannade hemma och tittade på en film.",
        ],
        "pl": [
            "Chciałbym zarezerwować stolik dla dwóch osób na dzisiejszy wieczór.",
            "Pogoda była okropna, więc zostaliśmy w domu i oglądaliśmy film.",
        ],
        "ru": [
            "Я хотел бы забронировать столик на двоих на сегодня вечером.",
            "Какой лучший способ выучить новый язык программирования?",
            "Погода была ужасная, поэтому мы остались дома и смотрели фильм.",
        ],
        "zh": ["我想预订今晚两个人的桌子。", "学习一门新的编程语言最好的方法是什么？"],
        "ja": [
            "今夜二人分のテーブルを予約したいです。",
            "新しいプログラミング言語を学ぶ最良の方法は何ですか？",
        ],
        "ko": [
            "오늘 밤 두 명 자리를 예약하고 싶습니다.",
            "새로운 프로그래밍 언어를 배우는 가장 좋은 방법은 무엇인가요?",
        ],
        "ar": ["أود حجز طاولة لشخصين الليلة.", "ما هي أفضل طريقة لتعلم لغة برمجة جديدة؟"],
    },
}
LANGUAGE["train"] = {}


def build_refusal(split: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"refusal-{split}-{seed}")
    records = [{"text": t, "label": "refusal"} for t in REFUSALS[split]]
    records += [{"text": t, "label": "answer"} for t in ANSWERS[split]]
    rng.shuffle(records)
    return [{"id": f"refusal-{split}-{i:03d}", **r} for i, r in enumerate(records)]


def build_language(split: str, seed: int) -> list[dict[str, Any]]:
    records = [
        {"id": f"lang-{split}-{lang}-{i:02d}", "text": text, "language": lang}
        for lang, texts in LANGUAGE[split].items()
        for i, text in enumerate(texts)
    ]
    return records
